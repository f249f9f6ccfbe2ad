"""Rows of the store that unit tests start from: one place for each row's defaults."""

from __future__ import annotations

from typing import Any

from trove_svc.store.models import Backup, DatastoreVersion, Instance


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


def backup(**changes: Any) -> Backup:
    """Backup b-1 of instance i-1 (project p1): a completed full PostgreSQL 15 backup;
    `changes` set any other column."""
    columns: dict[str, Any] = {
        "id": "b-1",
        "name": "b",
        "project_id": "p1",
        "instance_id": "i-1",
        "datastore": "postgresql",
        "datastore_version": "15",
        "state": "COMPLETED",
        "label": "20260101-000000F",
        "created_at": 1.0,
        "updated_at": 1.0,
        **changes,
    }
    return Backup.create(**columns)
