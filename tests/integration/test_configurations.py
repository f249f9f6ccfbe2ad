"""Configuration groups end to end: values checked against the engine itself, applied to
running PostgreSQL and MariaDB instances (dynamic ones live when the request answers, the
others after a restart, with RESTART_REQUIRED in between; a restart sent during a change
runs after it), shown, changed, detached."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import psycopg
import pymysql
import pytest

from tests import support

pytestmark = pytest.mark.integration

PROJECT = "configurations"
USER = {"name": "tuner", "password": "Tuner-pw-1-long"}


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


def _api(service: support.Service, token: str, method: str, path: str, body: Any = None) -> Any:
    return service.request(method, f"/v1.0/{PROJECT}{path}", token, body)


def _group(
    service: support.Service, token: str, datastore: str, values: dict[str, Any]
) -> dict[str, Any]:
    body = {
        "configuration": {
            "name": f"{datastore}-tuning",
            "values": values,
            "datastore": {"type": datastore},
        }
    }
    made = _api(service, token, "POST", "/configurations", body)
    assert made.status == 200, made.body
    return dict(made.body["configuration"])


def _configured(service: support.Service, token: str, instance_id: str, count: int) -> None:
    """Wait until `count` configure tasks of the instance ended, and say they succeeded."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = _api(service, token, "GET", f"/instances/{instance_id}/tasks").body["tasks"]
        ended = [t for t in listed if t["action"] == "configure" and t["finished"]]
        if len(ended) >= count:
            outcomes = [(t["state"], t["message"]) for t in ended]
            assert all(state == "SUCCEEDED" for state, _ in outcomes), outcomes
            return
        time.sleep(0.3)
    raise AssertionError(f"configure never ended: {listed}")


def _configuring(
    service: support.Service, token: str, instance_id: str, change: Future[support.Response]
) -> None:
    """Wait until a configure task of the instance is open while `change` waits for it."""
    while not change.done():
        listed = _api(service, token, "GET", f"/instances/{instance_id}/tasks").body["tasks"]
        if any(t["action"] == "configure" and not t["finished"] for t in listed):
            return
        time.sleep(0.05)
    raise AssertionError(f"the change answered before its task was seen open: {change.result()}")


def _restart_during(
    service: support.Service, token: str, instance_id: str, group_path: str, patch: Any
) -> None:
    """PATCH the group and, while its configure task is open, restart the instance: the
    restart is taken and runs once the configure task ended; the instance ends ACTIVE."""
    with ThreadPoolExecutor(1) as pool:
        changing = pool.submit(_api, service, token, "PATCH", group_path, patch)
        _configuring(service, token, instance_id, changing)
        restart = {"restart": {}}
        taken = _api(service, token, "POST", f"/instances/{instance_id}/action", restart)
        assert taken.status == 202, taken.body
        assert changing.result().status == 200
    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy)
    trail = _api(service, token, "GET", f"/instances/{instance_id}/tasks").body["tasks"]
    configure, restarted = trail[-2:]
    assert (configure["action"], restarted["action"]) == ("configure", "restart"), trail
    # (It was claimed at once, and waited: what the restart put in effect shows the order.)
    assert (configure["state"], restarted["state"]) == ("SUCCEEDED", "SUCCEEDED"), trail


def _status(service: support.Service, token: str, instance_id: str) -> str:
    return str(_api(service, token, "GET", f"/instances/{instance_id}").body["instance"]["status"])


def _restart(service: support.Service, token: str, instance_id: str) -> None:
    resp = _api(service, token, "POST", f"/instances/{instance_id}/action", {"restart": {}})
    assert resp.status == 202, resp.body
    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy)


def _refused(service: support.Service, token: str, datastore: str, values: dict[str, Any]) -> str:
    body = {"configuration": {"name": "bad", "values": values, "datastore": {"type": datastore}}}
    resp = _api(service, token, "POST", "/configurations", body)
    assert resp.status == 400, resp.body
    return str(resp.body["badRequest"]["message"])


@pytest.mark.parametrize(
    ("datastore", "values", "words"),
    [
        ("postgresql", {"work_mem": "lots"}, ["'work_mem'", "integer"]),
        ("postgresql", {"max_connections": 0}, ["'max_connections'", "between 1 and"]),
        ("postgresql", {"log_statement": "everything"}, ["'log_statement'", "one of", "ddl"]),
        ("postgresql", {"autovacuum": "maybe"}, ["'autovacuum'", "boolean"]),
        ("postgresql", {"archive_command": "sh -c x"}, ["'archive_command'", "cannot be set"]),
        ("mariadb", {"max_connections": 5}, ["'max_connections'", "between 10 and"]),
        ("mariadb", {"sql_mode": "STRICT_TRANS_TABLES,NOPE"}, ["'sql_mode'", "list of"]),
        ("mariadb", {"long_query_time": "soon"}, ["'long_query_time'", "number"]),
        ("mariadb", {"plugin_load_add": "x.so"}, ["'plugin_load_add'", "cannot be set"]),
        ("redis", {"maxmemory-policy": "lru"}, ["'maxmemory-policy'", "allkeys-lru"]),
        ("redis", {"hz": -1}, ["'hz'", "between 0 and"]),
        ("redis", {"dir": "/etc"}, ["'dir'", "cannot be set"]),
        # Strings in a form of the engine's own: a bad one would stop the next start.
        ("postgresql", {"timezone": "Nowhere/Land"}, ["'timezone'", "time zone the engine"]),
        ("postgresql", {"synchronous_standby_names": "FIRST x (a)"}, ["FIRST n (...)"]),
        ("mariadb", {"character_set_server": "klingon"}, ["character set the engine knows"]),
        ("mariadb", {"collation_server": "utf8mb4_nope"}, ["collation the engine knows"]),
        ("redis", {"save": "soon"}, ["'save'", "pairs of seconds"]),
        ("redis", {"notify-keyspace-events": "KG"}, ["'notify-keyspace-events'", "letters of"]),
    ],
)
def test_values_the_engine_refuses_are_refused(
    service: support.Service, token: str, datastore: str, values: dict[str, Any], words: list[str]
) -> None:
    message = _refused(service, token, datastore, values)
    for word in words:
        assert word in message, message
    assert _api(service, token, "GET", "/configurations").body["configurations"] == []


def test_postgresql_group_applied_shown_changed_detached(
    service: support.Service, token: str
) -> None:
    shown = _api(service, token, "GET", "/datastores/postgresql/versions")
    version = shown.body["versions"][0]["name"]
    listed = _api(service, token, "GET", f"/datastores/postgresql/versions/{version}/parameters")
    rules = {p["name"]: p for p in listed.body["configuration-parameters"]}
    assert rules["max_connections"]["restart_required"] is True
    assert rules["work_mem"]["restart_required"] is False and rules["work_mem"]["unit"] == "kB"

    group = _group(service, token, "postgresql", {"work_mem": 12288, "max_connections": 42})
    instance = service.create_healthy(
        token,
        PROJECT,
        "pg-tuned",
        datastore={"type": "postgresql"},
        databases=[{"name": "app"}],
        users=[{**USER, "databases": [{"name": "app"}]}],
    )

    def setting(name: str) -> str:
        with psycopg.connect(
            host=instance["ip"][0],
            port=instance["port"],
            dbname="app",
            user=USER["name"],
            password=USER["password"],
        ) as conn:
            row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,))
            return str(row.fetchone()[0])  # type: ignore[index]

    before = setting("max_connections")
    attach = {"instance": {"configuration": group["id"]}}
    assert _api(service, token, "PUT", f"/instances/{instance['id']}", attach).status == 202
    # The attach answers once the dynamic values are live, as Trove's does: read at once.
    assert setting("work_mem") == "12288"
    assert setting("max_connections") == before  # needs a restart ...
    assert _status(service, token, instance["id"]) == "RESTART_REQUIRED"
    _configured(service, token, instance["id"], 1)
    in_effect = _api(service, token, "GET", f"/instances/{instance['id']}/configuration")
    assert in_effect.body["instance"]["configuration"]["work_mem"] == "12288"
    members = _api(service, token, "GET", f"/configurations/{group['id']}/instances")
    assert members.body["instances"] == [{"id": instance["id"], "name": "pg-tuned"}]

    # ... which Trove's clients send right after the attach: taken, and it puts the value
    # in effect and ends RESTART_REQUIRED.
    _restart(service, token, instance["id"])
    assert setting("max_connections") == "42"
    assert setting("work_mem") == "12288"
    assert _status(service, token, instance["id"]) == "ACTIVE"

    # A change of the group reaches the instance attached, in its audit trail, the dynamic
    # value live when the change answers; a resize to more memory restarts the server,
    # which puts the other in effect too.
    patch = {"configuration": {"values": {"work_mem": 20480, "max_connections": 50}}}
    assert _api(service, token, "PATCH", f"/configurations/{group['id']}", patch).status == 200
    assert setting("work_mem") == "20480"
    assert _status(service, token, instance["id"]) == "RESTART_REQUIRED"
    _configured(service, token, instance["id"], 2)
    resize = {"resize": {"flavorRef": "2"}}
    assert _api(service, token, "POST", f"/instances/{instance['id']}/action", resize).status == 202
    service.wait_for(token, PROJECT, instance["id"], support.active_and_healthy)
    assert setting("max_connections") == "50"
    assert setting("work_mem") == "20480"  # the group's values outlive the resize
    assert _status(service, token, instance["id"]) == "ACTIVE"
    shown_group = _api(service, token, "GET", f"/configurations/{group['id']}").body
    assert shown_group["configuration"]["values"] == {"work_mem": 20480, "max_connections": 50}
    assert shown_group["configuration"]["instance_count"] == 1

    busy = _api(service, token, "DELETE", f"/configurations/{group['id']}")
    assert busy.status == 400 and "detach it first" in busy.body["badRequest"]["message"]
    detach = {"instance": {"configuration": None}}
    assert _api(service, token, "PUT", f"/instances/{instance['id']}", detach).status == 202
    # The reload took the group's value away: back to what the flavor (now 2) sizes.
    assert setting("work_mem") == "16384"
    _configured(service, token, instance["id"], 3)
    assert _api(service, token, "DELETE", f"/configurations/{group['id']}").status == 202
    assert _api(service, token, "DELETE", f"/instances/{instance['id']}").status == 202


def _detach_puts_removed_values_back_live(
    service: support.Service, token: str, instance_id: str, variable: Callable[[str], Any]
) -> None:
    """A detach puts the removed dynamic values back live at once (the detach answers once
    they are), to what the server's own files give (my.cnf's max_connections), else the
    server's default; only the value that needs a restart waits for one."""
    detach = {"instance": {"configuration": ""}}
    assert _api(service, token, "PUT", f"/instances/{instance_id}", detach).status == 202
    assert variable("max_connections") == 100  # my.cnf's, not the group's 77
    assert variable("long_query_time") == 10.0  # not in my.cnf: the server's default
    assert variable("slow_query_log") == 0
    _configured(service, token, instance_id, 4)
    trail = _api(service, token, "GET", f"/instances/{instance_id}/tasks").body["tasks"]
    detached = [t for t in trail if t["action"] == "configure"][-1]
    waiting = detached["message"].partition("a restart puts ")[2]
    assert waiting.startswith("performance_schema in effect"), detached["message"]


def test_mariadb_group_from_create_then_changed(service: support.Service, token: str) -> None:
    group = _group(service, token, "mariadb", {"long_query_time": 2.5})
    # A create that names the group starts with its values in effect, no restart needed.
    instance = service.create_healthy(
        token,
        PROJECT,
        "maria-tuned",
        datastore={"type": "mariadb"},
        configuration=group["id"],
        databases=[{"name": "shop"}],
        users=[{**USER, "databases": [{"name": "shop"}]}],
    )
    assert instance["configuration"]["id"] == group["id"]

    def variable(name: str) -> Any:
        conn = pymysql.connect(
            host=instance["ip"][0],
            port=instance["port"],
            user=USER["name"],
            password=USER["password"],
            database="shop",
        )
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT @@GLOBAL.{name}")
            value = cursor.fetchone()[0]  # type: ignore[index]
        conn.close()
        return value

    assert variable("long_query_time") == 2.5
    assert variable("performance_schema") == 0

    # A dynamic value added to the group is live when the change answers.
    patch = {"configuration": {"values": {"max_connections": 77}}}
    assert _api(service, token, "PATCH", f"/configurations/{group['id']}", patch).status == 200
    assert variable("max_connections") == 77
    assert _status(service, token, instance["id"]) == "ACTIVE"
    _configured(service, token, instance["id"], 1)

    # A restart-only value waits for a restart. One sent while the change is still being
    # applied is taken (not 409) and runs after it: it restarts with the new value.
    patch = {"configuration": {"values": {"performance_schema": True}}}
    _restart_during(service, token, instance["id"], f"/configurations/{group['id']}", patch)
    assert variable("performance_schema") == 1
    assert variable("max_connections") == 77
    assert variable("long_query_time") == 2.5
    assert _status(service, token, instance["id"]) == "ACTIVE"

    # A tenant who logs every statement (the slow log, at 0 s) finds no password there.
    patch = {"configuration": {"values": {"slow_query_log": True, "long_query_time": 0}}}
    assert _api(service, token, "PATCH", f"/configurations/{group['id']}", patch).status == 200
    _configured(service, token, instance["id"], 3)
    assert variable("slow_query_log") == 1
    secret = "Quokka-SlowLog-Pass-7731"
    users = {"users": [{"name": "logged", "password": secret}]}
    added = _api(service, token, "POST", f"/instances/{instance['id']}/users", users)
    assert added.status == 202, added.body
    conn = pymysql.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user=USER["name"],
        password=USER["password"],
        database="shop",
    )
    with conn.cursor() as cursor:
        cursor.execute("SELECT 'a statement the slow log shows'")
    conn.close()
    instance_dir = service.state_dir / "instances" / instance["id"]
    # The server writes a statement to the slow log after it answers it.
    deadline = time.monotonic() + 10
    while True:
        logged = "".join(p.read_text(errors="replace") for p in instance_dir.rglob("*.log"))
        if "a statement the slow log shows" in logged or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "a statement the slow log shows" in logged  # the log is on ...
    assert secret not in logged  # ... and the guest's statements are not in it

    _detach_puts_removed_values_back_live(service, token, instance["id"], variable)

    assert _api(service, token, "DELETE", f"/instances/{instance['id']}").status == 202
    service.wait_gone(token, PROJECT, instance["id"])
    assert _api(service, token, "DELETE", f"/configurations/{group['id']}").status == 202
