"""Every string a request body carries has a bound (a length, a form) before it is stored
or handed on, even those trove-svc only accepts for its clients' sake."""

from __future__ import annotations

from typing import Any

import falcon.testing
import pytest

from tests import rows
from trove_svc.store.models import Instance, Task

LONG = "x" * 300


def _create(**changes: Any) -> dict[str, Any]:
    instance = {"name": "x", "flavorRef": "1", "volume": {"size": 1}, **changes}
    return {"instance": instance}


@pytest.fixture
def active(client: falcon.testing.TestClient) -> str:
    rows.instance()
    return "/v1.0/p1/instances/i-1"


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "POST",
            "",
            _create(volume={"size": 1, "type": LONG}),
            "instance.volume.type: must be at most 64 characters.",
        ),
        (
            "POST",
            "",
            _create(availability_zone=LONG),
            "instance.availability_zone: must be at most 255 characters.",
        ),
        (
            "POST",
            "",
            _create(region_name=LONG),
            "instance.region_name: must be at most 255 characters.",
        ),
        ("POST", "", _create(nics=["net-1"]), "instance.nics.0: must be an object."),
        (
            "POST",
            "",
            _create(nics=[{"net-id": LONG}]),
            "instance.nics.0.net-id: must be at most 255 characters.",
        ),
        (
            "POST",
            "",
            _create(nics=[{"net id; x": "n"}]),
            "instance.nics.0: must match ^[a-z0-9_-]{1,32}$.",
        ),
        (
            "POST",
            "",
            _create(databases=[{"name": "shop", "character_set": ""}]),
            "instance.databases.0.character_set: must be at least 1 characters.",
        ),
        (
            "PUT",
            "/i-1",
            {"instance": {"configuration": LONG}},
            "instance.configuration: must be at most 64 characters.",
        ),
        (
            "PUT",
            "/i-1",
            {"instance": {"replica_of": LONG}},
            "instance.replica_of: must be at most 64 characters.",
        ),
        (
            "PATCH",
            "/i-1",
            {"instance": {"slave_of": LONG}},
            "instance.slave_of: must be at most 64 characters.",
        ),
        (
            "POST",
            "/i-1/schedules",
            {"schedule": {"name": "s", "cron": "0 3 * * * ; reboot"}},
            "schedule.cron: must match ^[A-Za-z0-9*/,?#@ -]+$.",
        ),
        (
            "POST",
            "/i-1/schedules",
            {"schedule": {"name": "s", "cron": "0 3 * * * `id`"}},
            "schedule.cron: must match ^[A-Za-z0-9*/,?#@ -]+$.",
        ),
    ],
)
def test_strings_without_a_bound_before_have_one(
    client: falcon.testing.TestClient,
    token: str,
    active: str,
    method: str,
    path: str,
    body: dict[str, Any],
    message: str,
) -> None:
    target = "/v1.0/p1/instances" + path
    result = client.simulate_request(method, target, json=body, headers={"X-Auth-Token": token})
    assert result.status_code == 400, result.text
    assert result.json["badRequest"]["message"] == message
    assert Task.select().count() == 0 and Instance.select().count() == 1


@pytest.mark.parametrize(
    ("restore_from", "message"),
    [
        (
            {"anything": {"deep": [1, 2, 3]}},
            "backup.restore_from: has unknown properties: 'anything'.",
        ),
        (
            {"remote_location": "x" * 2000},
            "backup.restore_from.remote_location: must be at most 1024 characters.",
        ),
    ],
)
def test_a_backup_copy_from_elsewhere_holds_only_what_trove_sends(
    client: falcon.testing.TestClient,
    token: str,
    active: str,
    restore_from: dict[str, Any],
    message: str,
) -> None:
    body = {"backup": {"name": "b", "instance": "i-1", "restore_from": restore_from}}
    result = client.simulate_post("/v1.0/p1/backups", json=body, headers={"X-Auth-Token": token})
    assert result.status_code == 400
    assert result.json["badRequest"]["message"] == message


def test_the_nics_trove_clients_send_are_taken(
    client: falcon.testing.TestClient, token: str
) -> None:
    nics = [{"net-id": "6b5a3c5e-2a43-4a5f-9d0e-1e1d8a3b6a10", "v4-fixed-ip": "10.0.0.5"}]
    result = client.simulate_post(
        "/v1.0/p1/instances", json=_create(nics=nics), headers={"X-Auth-Token": token}
    )
    # Past the schema: the create is refused only for want of a task manager to cast to.
    assert result.json == {
        "serviceUnavailable": {"code": 503, "message": "The message bus is unavailable."}
    }


def test_a_users_host_is_checked_when_its_password_changes_too(
    client: falcon.testing.TestClient, token: str, active: str
) -> None:
    users = [{"name": "shop", "password": "Long-enough-pw-1", "host": "no such host!"}]
    result = client.simulate_put(
        f"{active}/users", json={"users": users}, headers={"X-Auth-Token": token}
    )
    assert result.status_code == 400
    assert result.json["badRequest"]["message"].startswith("A user's host is not valid")
    assert "no such host" not in result.text
