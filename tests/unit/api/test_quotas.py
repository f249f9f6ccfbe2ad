"""Quotas: Trove's defaults, overLimit when a create would pass them, /limits reports them."""

from __future__ import annotations

import falcon.testing
import pytest

from trove_svc.domain import errors, quotas
from trove_svc.process.settings import Settings
from trove_svc.store.models import DatastoreVersion, Instance

BODY = {"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 5}}}


def _existing(count: int, size: int) -> None:
    for n in range(count):
        Instance.create(
            id=f"i-{n}",
            name="x",
            project_id="p1",
            datastore_version=DatastoreVersion.get(),
            flavor="1",
            volume_size=size,
            status="ACTIVE",
            created_at=0,
            updated_at=0,
        )


def test_instance_quota(client: falcon.testing.TestClient, token: str) -> None:
    _existing(10, 1)
    result = client.simulate_post("/v1.0/p1/instances", json=BODY, headers={"X-Auth-Token": token})
    assert result.status_code == 413
    assert result.json["overLimit"]["message"] == "Quota exceeded for resources: ['instances']."
    assert Instance.select().count() == 10


def test_volume_quota(client: falcon.testing.TestClient, token: str) -> None:
    _existing(1, 38)
    result = client.simulate_post("/v1.0/p1/instances", json=BODY, headers={"X-Auth-Token": token})
    assert result.status_code == 413 and "volumes" in result.json["overLimit"]["message"]


def test_limits_report_quota_and_use(client: falcon.testing.TestClient, token: str) -> None:
    _existing(2, 3)
    result = client.simulate_get("/v1.0/p1/limits", headers={"X-Auth-Token": token})
    absolute = result.json["limits"][0]
    assert absolute["verb"] == "ABSOLUTE"
    assert (absolute["max_instances"], absolute["max_volumes"], absolute["max_backups"]) == (
        10,
        40,
        50,
    )
    assert (absolute["used_instances"], absolute["used_volumes"]) == (2, 6)


def test_backup_quota(client: falcon.testing.TestClient, token: str) -> None:
    """The 51st backup of a project is refused before anything is recorded."""
    from trove_svc.store.models import Backup, Task

    Instance.create(
        id="i-1",
        name="x",
        project_id="p1",
        datastore_version=DatastoreVersion.get(),
        flavor="1",
        volume_size=1,
        status="ACTIVE",
        provisioned=True,
        created_at=0,
        updated_at=0,
    )
    for n in range(50):
        Backup.create(
            id=f"b-{n}",
            name="b",
            project_id="p1",
            instance_id="i-1",
            datastore="postgresql",
            datastore_version="15",
            state="COMPLETED",
            created_at=n,
            updated_at=n,
        )
    result = client.simulate_post(
        "/v1.0/p1/backups",
        json={"backup": {"name": "one-too-many", "instance": "i-1"}},
        headers={"X-Auth-Token": token},
    )
    assert result.status_code == 413
    assert result.json["overLimit"]["message"] == "Quota exceeded for resources: ['backups']."
    assert Backup.select().count() == 50 and Task.select().count() == 0
    assert Instance.get_by_id("i-1").status == "ACTIVE"


def test_limits_count_each_backup_of_the_project_until_it_is_deleted(
    client: falcon.testing.TestClient, token: str
) -> None:
    """A failed backup, and one whose instance is gone, count until deleted; another
    project's do not."""
    from trove_svc.store.models import Backup

    _existing(1, 1)
    for backup_id, project, instance, state in [
        ("b-1", "p1", "i-0", "COMPLETED"),
        ("b-2", "p1", "i-0", "FAILED"),
        ("b-3", "p1", "i-gone", "COMPLETED"),
        ("b-4", "p2", "i-other", "COMPLETED"),
    ]:
        Backup.create(
            id=backup_id,
            name="b",
            project_id=project,
            instance_id=instance,
            datastore="postgresql",
            datastore_version="15",
            state=state,
            created_at=0,
            updated_at=0,
        )

    def used() -> int:
        result = client.simulate_get("/v1.0/p1/limits", headers={"X-Auth-Token": token})
        return int(result.json["limits"][0]["used_backups"])

    assert used() == 3
    Backup.delete().where(Backup.id == "b-2").execute()
    assert used() == 2


def test_each_resource_is_checked_only_when_a_request_asks_for_more_of_it(
    client: falcon.testing.TestClient,
) -> None:
    """A project over its instance quota (lowered since) may still back up or shrink."""
    _existing(11, 1)
    quotas.check(Settings(), "p1", 0, 0, new_backups=1)
    with pytest.raises(errors.OverLimit, match=r"\['instances'\]"):
        quotas.check(Settings(), "p1", 1, 1)
