"""Rows of the store that unit tests start from: one place for an instance's defaults."""

from __future__ import annotations

from typing import Any

from trove_svc.store.models import DatastoreVersion, Instance


def instance(**changes: Any) -> Instance:
    """Instance i-1 of project p1, built and ACTIVE, of the store's first datastore version
    and flavor 1; `changes` set any other column."""
    columns: dict[str, Any] = {
        "id": "i-1",
        "name": "x",
        "project_id": "p1",
        "datastore_version": DatastoreVersion.select().first(),
        "flavor": "1",
        "volume_size": 1,
        "status": "ACTIVE",
        "provisioned": True,
        "created_at": 0,
        "updated_at": 0,
        **changes,
    }
    return Instance.create(**columns)
