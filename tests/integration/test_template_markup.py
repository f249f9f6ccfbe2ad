"""A tenant's strings are data: template markup sent in every string the API takes is
refused (4xx) or kept as the characters it is, through create, user create, password
change, access update, configuration attach, backup and restore. The markup would make a
file on the task manager's machine if any template evaluated it; that file never exists,
and a password that looks like a template logs in as exactly those characters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import support

pytestmark = pytest.mark.integration

PROJECT = "markup"


@pytest.fixture(scope="module")
def marker() -> Iterator[Path]:
    directory = support.shared_tmp_dir("trove-markup-")
    yield directory / "MARKER"
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()


def markups(marker: Path) -> list[str]:
    """Jinja that makes `marker` wherever a template evaluates it: an expression, a
    statement, and a lookup inside a filter."""
    touch = f"lookup('pipe', 'touch {marker}')"
    return [
        "{{ " + touch + " }}",
        "{% if " + touch + " %}{% endif %}",
        "{{ 'x' | regex_replace('x', " + touch + ") }}",
    ]


def connects(instance: dict[str, Any], user: str, password: str, dbname: str) -> bool:
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user=user,
        password=password,
        dbname=dbname,
        connect_timeout=10,
    ) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


class Tenant:
    def __init__(self, service: support.Service, marker: Path) -> None:
        self.service = service
        self.token = service.token(PROJECT)
        self.marker = marker

    def call(self, method: str, path: str, body: Any = None) -> support.Response:
        answer = self.service.request(method, f"/v1.0/{PROJECT}{path}", self.token, body)
        assert answer.status < 500, (method, path, answer.body)
        assert not self.marker.exists(), f"a template ran: {method} {path} {body}"
        return answer

    def refused(self, method: str, path: str, body: Any) -> None:
        answer = self.call(method, path, body)
        assert 400 <= answer.status < 500, (method, path, body, answer.body)

    def settled(self, instance_id: str) -> dict[str, Any]:
        shown = self.service.wait_for(
            self.token, PROJECT, instance_id, support.active_and_healthy, timeout=180
        )
        assert not self.marker.exists()
        return shown


def instance_body(**spec: Any) -> dict[str, Any]:
    return {
        "instance": {
            "name": "orders",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
            **spec,
        }
    }


def each_string_of_a_create(markup: str) -> Iterator[dict[str, Any]]:
    """Creates with markup in one string each, in the places the API checks it."""
    user = {"name": "shop", "password": "long-enough-pw-1"}
    yield instance_body(databases=[{"name": markup}])
    yield instance_body(databases=[{"name": "orders", "character_set": markup}])
    yield instance_body(databases=[{"name": "orders", "collate": markup}])
    yield instance_body(users=[{**user, "name": markup}])
    yield instance_body(users=[{**user, "host": markup}])
    yield instance_body(users=[{**user, "databases": [{"name": markup}]}])
    yield instance_body(access={"allowed_cidrs": [markup]})
    yield instance_body(access={"allowed_cidrs": ["fe80::%" + markup + "/128"]})
    yield instance_body(datastore={"type": "postgresql", "version": markup})
    yield instance_body(datastore={"type": markup})
    yield instance_body(configuration=markup)
    yield instance_body(flavorRef=markup)
    yield instance_body(restorePoint={"backupRef": markup})
    yield instance_body(replica_of=markup)


def test_markup_is_refused_or_kept_as_text_through_every_operation(
    service: support.Service, marker: Path
) -> None:
    tenant = Tenant(service, marker)
    marks = markups(marker)
    for markup in marks:
        for body in each_string_of_a_create(markup):
            tenant.refused("POST", "/instances", body)
    source = create_with_markup_kept(tenant, marks)
    passwords = check_users_and_passwords(tenant, source, marks)
    check_access_rules(tenant, source, marks)
    check_configuration_group(tenant, source, marks)
    restored = check_backup_and_restore(tenant, source, marks)
    for user, password in passwords.items():
        assert connects(restored, user, password, "orders")
    check_schedules(tenant, source, marks)

    for instance in (restored, source):
        tenant.call("DELETE", f"/instances/{instance['id']}")
    for instance in (restored, source):
        service.wait_gone(tenant.token, PROJECT, instance["id"], timeout=120)
    assert not marker.exists()


def create_with_markup_kept(tenant: Tenant, marks: list[str]) -> dict[str, Any]:
    """An instance named with markup, whose user's password is markup: both kept as text."""
    first, second, _ = marks
    password = first + "Aa1-pad"
    created = tenant.call(
        "POST",
        "/instances",
        instance_body(
            name=second,
            databases=[{"name": "orders"}],
            users=[{"name": "shop", "password": password, "databases": [{"name": "orders"}]}],
        ),
    )
    assert created.status == 200, created.body
    source = tenant.settled(created.body["instance"]["id"])
    assert source["name"] == second
    assert connects(source, "shop", password, "orders")
    return source


def check_users_and_passwords(
    tenant: Tenant, source: dict[str, Any], marks: list[str]
) -> dict[str, str]:
    """Markup is refused as a user's or a database's name and kept as a password, for a new
    user and a changed password; answers each user's password."""
    first, second, third = marks
    at = f"/instances/{source['id']}"
    clerk_password = second + "Aa1-pad"
    for markup in (first, second):
        tenant.refused(
            "POST", f"{at}/users", {"users": [{"name": markup, "password": clerk_password}]}
        )
        tenant.refused("POST", f"{at}/databases", {"databases": [{"name": markup}]})
    answer = tenant.call(
        "POST",
        f"{at}/users",
        {
            "users": [
                {"name": "clerk", "password": clerk_password, "databases": [{"name": "orders"}]}
            ]
        },
    )
    assert answer.status == 202, answer.body
    assert connects(source, "clerk", clerk_password, "orders")
    new_password = third + "Aa1-pad"
    answer = tenant.call(
        "PUT", f"{at}/users", {"users": [{"name": "shop", "password": new_password}]}
    )
    assert answer.status == 202, answer.body
    assert connects(source, "shop", new_password, "orders")
    return {"shop": new_password, "clerk": clerk_password}


def check_access_rules(tenant: Tenant, source: dict[str, Any], marks: list[str]) -> None:
    first, second, third = marks
    at = f"/instances/{source['id']}"
    for markup in (first, "fe80::%" + second + "/128", "10.0.0.0/8" + third):
        tenant.refused("PUT", at, {"instance": {"access": {"allowed_cidrs": [markup]}}})
    answer = tenant.call("PUT", at, {"instance": {"access": {"allowed_cidrs": ["10.1.0.0/16"]}}})
    assert answer.status == 202, answer.body
    tenant.settled(source["id"])


def check_configuration_group(tenant: Tenant, source: dict[str, Any], marks: list[str]) -> None:
    """A configuration group: its name and description are kept; markup as a value is not."""
    first, second, third = marks
    at = f"/instances/{source['id']}"
    group_body = {
        "configuration": {
            "name": first,
            "description": second,
            "datastore": {"type": "postgresql"},
            "values": {"work_mem": 12288},
        }
    }
    for values in ({"timezone": first}, {"statement_timeout": second}, {first: 1}):
        refused_group = {"configuration": {**group_body["configuration"], "values": values}}
        tenant.refused("POST", "/configurations", refused_group)
    group = tenant.call("POST", "/configurations", group_body)
    assert group.status == 200, group.body
    assert group.body["configuration"]["name"] == first
    group_id = group.body["configuration"]["id"]
    tenant.refused(
        "PATCH", f"/configurations/{group_id}", {"configuration": {"values": {"timezone": third}}}
    )
    answer = tenant.call("PUT", at, {"instance": {"configuration": group_id}})
    assert answer.status == 202, answer.body
    tenant.settled(source["id"])
    deadline = time.monotonic() + 60
    while True:  # the group is applied by a task of its own
        shown = tenant.call("GET", f"{at}/configuration").body["instance"]["configuration"]
        if str(shown["work_mem"]) == "12288":
            break
        assert time.monotonic() < deadline, shown
        time.sleep(0.5)


def check_backup_and_restore(
    tenant: Tenant, source: dict[str, Any], marks: list[str]
) -> dict[str, Any]:
    """A backup named and described with markup, and a restore from it (answered once
    HEALTHY)."""
    first, second, third = marks
    for spec in ({"parent_id": first}, {"swift_container": second}, {"instance": third}):
        tenant.refused(
            "POST", "/backups", {"backup": {"name": "b", "instance": source["id"], **spec}}
        )
    answer = tenant.call(
        "POST",
        "/backups",
        {"backup": {"name": first, "description": second, "instance": source["id"]}},
    )
    assert answer.status == 202, answer.body
    made = wait_for_backup(tenant, answer.body["backup"]["id"])
    assert (made["status"], made["name"], made["description"]) == ("COMPLETED", first, second)
    tenant.settled(source["id"])
    tenant.refused(
        "POST",
        "/instances",
        instance_body(restorePoint={"backupRef": made["id"], "restore_time": first}),
    )
    restored_answer = tenant.call(
        "POST", "/instances", instance_body(name=third, restorePoint={"backupRef": made["id"]})
    )
    assert restored_answer.status == 200, restored_answer.body
    return tenant.settled(restored_answer.body["instance"]["id"])


def check_schedules(tenant: Tenant, source: dict[str, Any], marks: list[str]) -> None:
    first, second, third = marks
    at = f"/instances/{source['id']}"
    for spec in ({"name": "s", "cron": first}, {"name": "s", "cron": "0 3 * * * " + second}):
        tenant.refused("POST", f"{at}/schedules", {"schedule": spec})
    schedule = tenant.call(
        "POST", f"{at}/schedules", {"schedule": {"name": third, "cron": "0 3 * * *"}}
    )
    assert schedule.status in (200, 201, 202), schedule.body
    assert schedule.body["schedule"]["name"] == third


def wait_for_backup(tenant: Tenant, backup_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        shown = tenant.call("GET", f"/backups/{backup_id}").body["backup"]
        if shown["status"] in ("COMPLETED", "FAILED"):
            return dict(shown)
        time.sleep(0.3)
    raise AssertionError(f"backup {backup_id} never ended")
