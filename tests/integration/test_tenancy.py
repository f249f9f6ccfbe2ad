"""Every documented route, walked with another project's token and with none; and an
admin's reach into another project through the admin's own project's path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests import support

pytestmark = pytest.mark.integration

OWNER, STRANGER, OPERATORS = "tenancy-owner", "tenancy-stranger", "tenancy-operators"

# A valid body for every operation that takes one, so a refusal can only come from
# tenancy, never from validation. A new body-taking route fails this test until added.
BODIES: dict[str, Any] = {
    "Instances.on_post": {"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 1}}},
    "InstanceItem.on_put": {"instance": {"name": "stolen"}},
    "InstanceItem.on_patch": {"instance": {"name": "stolen"}},
    "InstanceAction.on_post": {"restart": {}},
    "Databases.on_post": {"databases": [{"name": "loot"}]},
    "Users.on_post": {"users": [{"name": "thief", "password": "pw-123456-long"}]},
    "Users.on_put": {"users": [{"name": "shop", "password": "pw-123456-long"}]},
    "User.on_put": {"user": {"password": "pw-123456-long"}},
    "UserAccess.on_put": {"databases": [{"name": "orders"}]},
    "Root.on_post": None,
    "Backups.on_post": {"backup": {"name": "loot", "instance": "any"}},
    "BackupStrategies.on_post": {"backup_strategy": {"swift_container": "loot"}},
    "Schedules.on_post": {"schedule": {"name": "loot", "cron": "* * * * *"}},
    "Configurations.on_post": {"configuration": {"name": "loot", "values": {}}},
    "ConfigurationItem.on_put": {"configuration": {"values": {}}},
    "ConfigurationItem.on_patch": {"configuration": {"values": {}}},
}


@pytest.fixture(scope="module")
def victim(service: support.Service) -> Iterator[dict[str, Any]]:
    token = service.token(OWNER)
    body = {
        "instance": {
            "name": "private",
            "flavorRef": "1",
            "volume": {"size": 1},
            "databases": [{"name": "orders"}],
            "users": [
                {"name": "shop", "password": "Shop-pw-1-long", "databases": [{"name": "orders"}]}
            ],
        }
    }
    created = service.request("POST", f"/v1.0/{OWNER}/instances", token, body)
    assert created.status == 200
    instance = service.wait_for(
        token, OWNER, created.body["instance"]["id"], support.active_and_healthy
    )
    yield {"token": token, "instance": instance}
    service.request("DELETE", f"/v1.0/{OWNER}/instances/{instance['id']}", token)


def _operations(service: support.Service) -> list[tuple[str, str, dict[str, Any]]]:
    document = service.request("GET", "/openapi.json", None).body
    return [
        (path, method, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if op.get("security") != []
    ]


def _fill(path: str, project: str, instance_id: str, version_id: str) -> str:
    values = {
        "project_id": project,
        "task_id": "any-task",
        "instance_id": instance_id,
        "flavor_id": "1",
        "datastore": "postgresql",
        "version": version_id,
        "version_id": version_id,
        "name": "max_connections",
        "user": "shop",
        "database": "orders",
        "backup_id": "any-backup",
        "schedule_id": "any-schedule",
        "configuration_id": "any-configuration",
    }
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


def test_every_route_refuses_other_projects_and_anonymous(
    service: support.Service,
    victim: dict[str, Any],
) -> None:
    instance = victim["instance"]
    stranger = service.token(STRANGER)
    version_id = service.request(
        "GET", f"/v1.0/{OWNER}/datastores/postgresql/versions", victim["token"]
    ).body["versions"][0]["id"]
    operations = _operations(service)
    assert len(operations) > 30
    for path, method, op in operations:
        body = BODIES.get(op["operationId"]) if "requestBody" in op else None
        if "requestBody" in op:
            assert op["operationId"] in BODIES, f"add a valid body for {op['operationId']}"

        # The owner's project in the path, the stranger's token: forbidden.
        owner_path = _fill(path, OWNER, instance["id"], version_id)
        resp = service.request(method.upper(), owner_path, stranger, body)
        assert resp.status == 403, (method, owner_path, resp.body)
        assert instance["id"].encode() not in resp.raw

        # No token at all: unauthorized.
        resp = service.request(method.upper(), owner_path, None, body)
        assert resp.status == 401, (method, owner_path, resp.body)

        # The stranger's own project, the owner's instance: not found.
        if "{instance_id}" in path:
            own_path = _fill(path, STRANGER, instance["id"], version_id)
            resp = service.request(method.upper(), own_path, stranger, body)
            assert resp.status in (403, 404), (method, own_path, resp.body)
            assert instance["id"].encode() not in resp.raw or resp.status == 404

    # And nothing the stranger tried changed the owner's instance.
    shown = service.request(
        "GET", f"/v1.0/{OWNER}/instances/{instance['id']}", victim["token"]
    ).body["instance"]
    assert shown["name"] == "private" and shown["status"] == "ACTIVE"
    users = service.request(
        "GET", f"/v1.0/{OWNER}/instances/{instance['id']}/users", victim["token"]
    ).body["users"]
    assert [u["name"] for u in users] == ["shop"]

    # Last (it leaves the instance in ERROR): the admin's cleanup in Trove's tempest plugin.
    _an_admin_resets_it_through_their_own_projects_path(service, victim, stranger)


def _an_admin_resets_it_through_their_own_projects_path(
    service: support.Service, victim: dict[str, Any], stranger: str
) -> None:
    instance_id = victim["instance"]["id"]
    reset = {"reset_status": {}}

    # The same request from a project's own path, by someone without the admin role.
    resp = service.request(
        "POST", f"/v1.0/{STRANGER}/instances/{instance_id}/action", stranger, reset
    )
    assert resp.status == 404, resp.body
    assert OWNER.encode() not in resp.raw

    admin = service.cli("token", "create", "--project", OPERATORS, "--user", "olga", "--admin")
    own_list = service.request("GET", f"/v1.0/{OPERATORS}/instances", admin).body["instances"]
    assert instance_id not in [i["id"] for i in own_list]  # lists stay the path's
    resp = service.request(
        "POST", f"/v1.0/{OPERATORS}/instances/{instance_id}/action", admin, reset
    )
    assert resp.status == 202, resp.body

    path = f"/v1.0/{OWNER}/instances/{instance_id}"
    assert service.request("GET", path, victim["token"]).body["instance"]["status"] == "ERROR"
    trail = service.request("GET", f"{path}/tasks", victim["token"]).body["tasks"]
    by_admin = [t for t in trail if t["action"] == "reset_status"]
    assert [(t["requested_by"], t["requested_by_project"]) for t in by_admin] == [
        ("olga", OPERATORS)
    ], trail
    assert {t["requested_by_project"] for t in trail if t["action"] == "create"} == {OWNER}
