"""A PostgreSQL instance end to end, over real RabbitMQ, ansible-runner and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import psycopg
import pytest

from tests import support

pytestmark = pytest.mark.integration

PROJECT = "e2e"
PASSWORD = "Pw-7f3c1e9a-known-to-the-test"


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


@pytest.fixture(scope="module")
def instance(service: support.Service, token: str) -> Iterator[dict[str, Any]]:
    body = {
        "instance": {
            "name": "orders",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
            "databases": [{"name": "orders"}, {"name": "audit"}],
            "users": [{"name": "shop", "password": PASSWORD, "databases": [{"name": "orders"}]}],
        }
    }
    created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    assert created.status == 200, created.body
    assert created.body["instance"]["status"] == "BUILD"
    instance_id = created.body["instance"]["id"]
    ready = service.wait_for(token, PROJECT, instance_id, support.active_and_healthy)
    yield ready
    service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance_id}", token)


def test_user_connects_and_writes_a_row(instance: dict[str, Any]) -> None:
    assert instance["ip"] == ["127.0.0.1"]
    assert instance["port"] not in (5432, None)
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="shop",
        password=PASSWORD,
        dbname="orders",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TABLE item (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO item VALUES (1, 'first')")
        assert conn.execute("SELECT name FROM item").fetchall() == [("first",)]


def test_wrong_password_is_refused(instance: dict[str, Any]) -> None:
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            host="127.0.0.1",
            port=instance["port"],
            user="shop",
            password="not-the-password",
            dbname="orders",
        ).close()


def test_databases_are_listed_through_the_guest(
    service: support.Service, token: str, instance: dict[str, Any]
) -> None:
    resp = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance['id']}/databases", token)
    assert resp.status == 200, resp.body
    assert [d["name"] for d in resp.body["databases"]] == ["audit", "orders"]


def test_volume_usage_comes_from_heartbeats(
    service: support.Service, token: str, instance: dict[str, Any]
) -> None:
    shown = service.wait_for(
        token, PROJECT, instance["id"], lambda i: i["volume"].get("used", 0) > 0, timeout=15
    )
    assert 0 < shown["volume"]["used"] < shown["volume"]["size"]


def test_another_project_cannot_see_it(service: support.Service, instance: dict[str, Any]) -> None:
    other = service.token("someone-else")
    listed = service.request("GET", "/v1.0/someone-else/instances", other)
    assert listed.status == 200 and listed.body["instances"] == []
    shown = service.request("GET", f"/v1.0/someone-else/instances/{instance['id']}", other)
    assert shown.status == 404 and shown.body["itemNotFound"]["code"] == 404
    crossed = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance['id']}", other)
    assert crossed.status == 403 and "forbidden" in crossed.body


def test_the_password_is_nowhere_on_record(
    service: support.Service, instance: dict[str, Any]
) -> None:
    needle = PASSWORD.encode()
    runs = service.state_dir / "runs"
    artifact_files = [p for p in runs.rglob("*") if p.is_file()]
    assert artifact_files, "the runs left no artifacts to search"
    leaked = [str(p) for p in artifact_files if needle in p.read_bytes()]
    assert leaked == []
    with sqlite3.connect(service.state_dir / "trove-svc.db") as db:
        rows = db.execute("SELECT * FROM task").fetchall()
    assert rows and PASSWORD not in json.dumps(rows)
    assert needle not in service.log_path.read_bytes()
    assert list((service.state_dir / "secrets").iterdir()) == []


def _guest_queue_exists(transport_url: str, instance_id: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(transport_url))
    try:
        connection.channel().queue_declare(f"guestagent.{instance_id}", passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_delete_leaves_nothing_behind(
    service: support.Service, token: str, instance: dict[str, Any]
) -> None:
    instance_dir = service.state_dir / "instances" / instance["id"]
    postgres_pid = int(
        (instance_dir / "postgresql" / "data" / "postmaster.pid").read_text().split()[0]
    )
    guest_pid = int((instance_dir / "guest.pid").read_text())
    owner = instance_dir.joinpath("postgresql").owner()
    assert support.pid_alive(postgres_pid) and support.pid_alive(guest_pid)
    assert _guest_queue_exists(service.transport_url, instance["id"])

    resp = service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
    assert resp.status == 202
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listed = service.request("GET", f"/v1.0/{PROJECT}/instances", token)
        if instance["id"] not in [i["id"] for i in listed.body["instances"]]:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the instance is still listed")

    assert not support.pid_alive(postgres_pid)
    assert not support.pid_alive(guest_pid)
    assert not instance_dir.exists()
    assert not _guest_queue_exists(service.transport_url, instance["id"])
    if owner != "root":
        assert subprocess.run(["id", owner], capture_output=True).returncode != 0
    shown = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
    assert shown.status == 404


def test_created_files_are_private(service: support.Service) -> None:
    for path in Path(service.state_dir, "runs").iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
