"""An admin acts on any project's instance, backup or configuration group by its id,
through any project's path, in the resource's own project, and the audit trail names the
admin; anyone else finds another project's id nowhere (404), as before."""

from __future__ import annotations

import logging
import re

import falcon.testing
import pytest

from tests import rows
from trove_svc.domain import owners
from trove_svc.security import tokens
from trove_svc.store.models import Backup, Configuration, DatastoreVersion, Instance, Task

# The tenant's instance i-1 is in p1; the admin's own project is "ops".
ADMIN_PATH = "/v1.0/ops/instances/i-1"


@pytest.fixture
def admin(token: str) -> str:
    return tokens.issue("ops", "operator-olga", True, now=0.0)


@pytest.fixture
def stranger(token: str) -> str:
    return tokens.issue("p2", "mallory", False, now=0.0)


def _backup(project_id: str = "p1", instance_id: str = "i-1") -> Backup:
    return Backup.create(
        id="b-1",
        name="nightly",
        project_id=project_id,
        instance_id=instance_id,
        datastore="postgresql",
        datastore_version="15",
        state="COMPLETED",
        created_at=0,
        updated_at=0,
    )


def _group() -> Configuration:
    return Configuration.create(
        id="c-1",
        project_id="p1",
        name="tuned",
        datastore_version=DatastoreVersion.get(),
        values={},
        created_at=0,
        updated_at=0,
    )


def test_an_admin_resets_another_projects_instance_through_their_own_projects_path(
    client: falcon.testing.TestClient, token: str, admin: str, caplog: pytest.LogCaptureFixture
) -> None:
    rows.instance(status="BUILD")
    with caplog.at_level(logging.INFO, logger="trove_svc.api.middleware"):
        reset = client.simulate_post(
            f"{ADMIN_PATH}/action", json={"reset_status": {}}, headers={"X-Auth-Token": admin}
        )
    assert reset.status_code == 202, reset.text
    assert Instance.get_by_id("i-1").status == "ERROR"
    (task,) = Task.select()
    assert (task.project_id, task.action, task.requested_by, task.requested_by_project) == (
        "p1",
        "reset_status",
        "operator-olga",
        "ops",
    )
    assert "admin operator-olga of project ops acts in project p1" in caplog.text
    # The tenant's audit trail names the admin and the admin's project.
    trail = client.simulate_get(
        "/v1.0/p1/instances/i-1/tasks", headers={"X-Auth-Token": token}
    ).json["tasks"]
    assert [(t["action"], t["requested_by"], t["requested_by_project"]) for t in trail] == [
        ("reset_status", "operator-olga", "ops")
    ]
    # The admin reads the same trail through their own project's path.
    seen = client.simulate_get(f"{ADMIN_PATH}/tasks", headers={"X-Auth-Token": admin})
    assert seen.status_code == 200 and seen.json["tasks"] == trail


def test_a_tenants_own_actions_name_their_project_in_the_trail(
    client: falcon.testing.TestClient, token: str
) -> None:
    rows.instance()
    headers = {"X-Auth-Token": token}
    resized = client.simulate_post(
        "/v1.0/p1/instances/i-1/action", json={"resize": {"volume": {"size": 2}}}, headers=headers
    )
    assert resized.status_code == 202, resized.text
    trail = client.simulate_get("/v1.0/p1/instances/i-1/tasks", headers=headers).json["tasks"]
    assert [(t["requested_by"], t["requested_by_project"]) for t in trail] == [("alice", "p1")]


def test_an_admins_action_counts_against_the_instances_project_quota(
    client: falcon.testing.TestClient, admin: str
) -> None:
    """The volume quota checked is p1's (full), not the admin's (empty)."""
    rows.instance()
    rows.instance(id="i-2", volume_size=39)
    grown = client.simulate_post(
        f"{ADMIN_PATH}/action",
        json={"resize": {"volume": {"size": 2}}},
        headers={"X-Auth-Token": admin},
    )
    assert grown.status_code == 413, grown.text
    assert Instance.get_by_id("i-1").volume_size == 1
    (refused,) = Task.select()
    assert (refused.project_id, refused.state, refused.requested_by_project) == (
        "p1",
        "FAILED",
        "ops",
    )


def test_an_admins_lists_stay_in_the_path_project(
    client: falcon.testing.TestClient, admin: str
) -> None:
    rows.instance()
    _backup()
    _group()
    headers = {"X-Auth-Token": admin}
    for kind in ("instances", "backups", "configurations"):
        own = client.simulate_get(f"/v1.0/ops/{kind}", headers=headers)
        assert own.status_code == 200 and own.json[kind] == [], kind
        tenants = client.simulate_get(f"/v1.0/p1/{kind}", headers=headers)
        assert [item["id"] for item in tenants.json[kind]] in (["i-1"], ["b-1"], ["c-1"]), kind


def test_an_admin_finds_another_projects_backup_and_group_by_id(
    client: falcon.testing.TestClient, admin: str
) -> None:
    rows.instance()
    _backup()
    _group()
    headers = {"X-Auth-Token": admin}
    backup = client.simulate_get("/v1.0/ops/backups/b-1", headers=headers)
    assert backup.status_code == 200 and backup.json["backup"]["project_id"] == "p1"
    group = client.simulate_get("/v1.0/ops/configurations/c-1", headers=headers)
    assert group.status_code == 200 and group.json["configuration"]["id"] == "c-1"
    instance = client.simulate_get(ADMIN_PATH, headers=headers)
    assert instance.status_code == 200 and instance.json["instance"]["tenant_id"] == "p1"
    of_instance = client.simulate_get(f"{ADMIN_PATH}/backups", headers=headers)
    assert [b["id"] for b in of_instance.json["backups"]] == ["b-1"]
    unknown = client.simulate_get("/v1.0/ops/instances/i-none", headers=headers)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1.0/p2/instances/i-1/action", {"reset_status": {}}),
        ("POST", "/v1.0/p2/instances/i-1/action", {"restart": {}}),
        ("GET", "/v1.0/p2/instances/i-1", None),
        ("PUT", "/v1.0/p2/instances/i-1", {"instance": {"name": "stolen"}}),
        ("DELETE", "/v1.0/p2/instances/i-1", None),
        ("GET", "/v1.0/p2/instances/i-1/tasks", None),
        ("GET", "/v1.0/p2/instances/i-1/backups", None),
        ("GET", "/v1.0/p2/backups/b-1", None),
        ("DELETE", "/v1.0/p2/backups/b-1", None),
        ("GET", "/v1.0/p2/configurations/c-1", None),
        ("DELETE", "/v1.0/p2/configurations/c-1", None),
    ],
)
def test_anyone_else_finds_another_projects_id_nowhere(
    client: falcon.testing.TestClient,
    stranger: str,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    rows.instance(status="BUILD")
    _backup()
    _group()
    result = client.simulate_request(method, path, json=body, headers={"X-Auth-Token": stranger})
    assert result.status_code == 404, result.text
    assert "p1" not in result.text and "nightly" not in result.text
    assert Instance.get_by_id("i-1").status == "BUILD"
    assert Instance.get_by_id("i-1").name == "x"
    assert Backup.get_by_id("b-1").state == "COMPLETED"
    assert Configuration.get_or_none(Configuration.id == "c-1") is not None
    assert Task.select().count() == 0


def test_anyone_else_naming_the_tenants_project_is_forbidden(
    client: falcon.testing.TestClient, stranger: str
) -> None:
    rows.instance(status="BUILD")
    reset = client.simulate_post(
        "/v1.0/p1/instances/i-1/action",
        json={"reset_status": {}},
        headers={"X-Auth-Token": stranger},
    )
    assert reset.status_code == 403
    assert Instance.get_by_id("i-1").status == "BUILD"


def test_reset_status_needs_the_admin_role_in_ones_own_project_too(
    client: falcon.testing.TestClient, token: str
) -> None:
    rows.instance(status="BUILD")
    reset = client.simulate_post(
        "/v1.0/p1/instances/i-1/action",
        json={"reset_status": {}},
        headers={"X-Auth-Token": token},
    )
    assert reset.status_code == 403
    assert Instance.get_by_id("i-1").status == "BUILD" and Task.select().count() == 0


def test_a_deleted_instance_belongs_to_the_project_of_the_backups_it_left(
    token: str,
) -> None:
    _backup(instance_id="i-gone")
    assert owners.project_of({"project_id": "ops", "instance_id": "i-gone"}) == "p1"
    assert owners.project_of({"project_id": "ops", "instance_id": "i-never"}) is None
    assert owners.project_of({"project_id": "ops"}) is None


# Path fields that name no resource of a project's own (the catalog's), or one that only
# lives under an instance (whose project is the instance's).
NOT_OWNED = {"project_id", "flavor_id", "version_id", "task_id", "schedule_id"}


def test_every_id_a_route_takes_is_owned_or_known_not_to_be(
    client: falcon.testing.TestClient,
) -> None:
    """A new route naming a new kind of resource by id must say whose it is, or an admin
    would get 404 for it through another project's path."""
    paths = client.simulate_get("/openapi.json").json["paths"]
    fields = {field for path in paths for field in re.findall(r"{(\w+_id)}", path)}
    owned = {field for field, _ in owners.OWNED}
    assert fields - NOT_OWNED == owned
