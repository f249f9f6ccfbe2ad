"""Status you can trust: a dead datastore or a silent guest shows, and restart mends it."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psycopg
import pymysql
import pytest

from tests import processes, support
from tests.deployments import store

pytestmark = pytest.mark.integration

PROJECT = "health"


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


def _instance(service: support.Service, token: str, datastore: str) -> dict[str, Any]:
    body = {
        "instance": {
            "name": f"{datastore}-health",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": datastore},
            "databases": [{"name": "app"}],
            "users": [{"name": "app", "password": "App-pw-1-long", "databases": [{"name": "app"}]}],
        }
    }
    created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    assert created.status == 200, created.body
    return service.wait_for(
        token, PROJECT, created.body["instance"]["id"], support.active_and_healthy
    )


def _pid(path: Any) -> int:
    return int(path.read_text().split()[0])


def _not_healthy_within(
    service: support.Service, token: str, instance: dict[str, Any], seconds: float
) -> dict[str, Any]:
    started = time.monotonic()
    shown = service.wait_for(
        token,
        PROJECT,
        instance["id"],
        lambda i: i["operating_status"] != "HEALTHY",
        timeout=seconds,
    )
    assert time.monotonic() - started <= seconds
    return shown


def _restart(service: support.Service, token: str, instance: dict[str, Any]) -> None:
    resp = service.request(
        "POST", f"/v1.0/{PROJECT}/instances/{instance['id']}/action", token, {"restart": {}}
    )
    assert resp.status == 202, resp.body
    service.wait_for(token, PROJECT, instance["id"], support.active_and_healthy)


@pytest.mark.parametrize("datastore", ["postgresql", "mariadb"])
def test_killed_datastore_shows_and_restart_brings_it_back(
    service: support.Service,
    token: str,
    datastore: str,
) -> None:
    instance = _instance(service, token, datastore)
    base = service.state_dir / "instances" / instance["id"] / datastore
    write, read = {
        "postgresql": (_pg_write, _pg_read),
        "mariadb": (_mariadb_write, _mariadb_read),
    }[datastore]
    write(instance)
    pid_file = (
        base / "data" / "postmaster.pid" if datastore == "postgresql" else (base / "mariadbd.pid")
    )
    os.kill(_pid(pid_file), signal.SIGKILL)

    shown = _not_healthy_within(service, token, instance, seconds=5 + 2)
    assert shown["operating_status"] == "SHUTDOWN" and shown["status"] == "ACTIVE"
    _restart(service, token, instance)
    assert read(instance) == [(1,)]

    # A silent guest: after the expiry (5 s in the tests) the instance shows SHUTDOWN.
    processes.kill_guest(service.state_dir / "instances" / instance["id"] / "guest.pid")
    shown = _not_healthy_within(service, token, instance, seconds=5 + 5)
    assert shown["operating_status"] == "SHUTDOWN"
    _restart(service, token, instance)  # brings the guest back too
    assert processes.pid_alive(_pid(service.state_dir / "instances" / instance["id"] / "guest.pid"))

    resp = service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
    assert resp.status == 202
    service.wait_gone(token, PROJECT, instance["id"])


def _pg_write(instance: dict[str, Any]) -> None:
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="app",
        password="App-pw-1-long",
        dbname="app",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (1)")


def _pg_read(instance: dict[str, Any]) -> list[tuple[Any, ...]]:
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="app",
        password="App-pw-1-long",
        dbname="app",
    ) as conn:
        return conn.execute("SELECT v FROM t").fetchall()


def _mariadb_write(instance: dict[str, Any]) -> None:
    conn = pymysql.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="app",
        password="App-pw-1-long",
        database="app",
        autocommit=True,
    )
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE t (v int)")
        cursor.execute("INSERT INTO t VALUES (1)")
    conn.close()


def _mariadb_read(instance: dict[str, Any]) -> list[tuple[Any, ...]]:
    conn = pymysql.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="app",
        password="App-pw-1-long",
        database="app",
    )
    with conn.cursor() as cursor:
        cursor.execute("SELECT v FROM t")
        rows = [tuple(r) for r in cursor.fetchall()]
    conn.close()
    return rows


def test_a_restart_settles_on_the_heartbeat_it_asks_for_not_the_next_one_due() -> None:
    """Heartbeats an hour apart: the guest's last word before a restart ends said its
    datastore was down (as a heartbeat in the restart's downtime would); the instance is
    ACTIVE and HEALTHY again on the heartbeat the restart's end asks its guest for."""
    hour = 3600
    service = support.Service(
        extra_env={
            "TROVE_SVC_HEARTBEAT_INTERVAL": str(hour),
            "TROVE_SVC_HEARTBEAT_EXPIRY": str(2 * hour),
            "TROVE_SVC_SOURCE_LEASE": "0",  # none: a lease needs a beat in it
        }
    )
    service.start()
    try:
        token = service.token(PROJECT)
        instance = service.create_healthy(token, PROJECT, "hourly", datastore={"type": "redis"})
        with store(service) as db:
            db.execute(
                "UPDATE service_status SET operating_status = 'SHUTDOWN' WHERE instance_id = ?",
                (instance["id"],),
            )
        shown = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
        assert shown.body["instance"]["operating_status"] == "SHUTDOWN", shown.body
        _restart(service, token, instance)  # ACTIVE and HEALTHY within its 120 s wait
    finally:
        service.cleanup()
