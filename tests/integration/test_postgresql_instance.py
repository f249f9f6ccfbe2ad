"""A PostgreSQL instance end to end, over real RabbitMQ, ansible-runner and PostgreSQL."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import processes, support
from tests.support import orders_instance

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "e2e"
PASSWORD = "Pw-7f3c1e9a-known-to-the-test"


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


@pytest.fixture(scope="module")
def instance(service: support.Service, token: str) -> Iterator[dict[str, Any]]:
    ready = orders_instance(service, token, PROJECT, PASSWORD)
    yield ready
    service.request("DELETE", f"/v1.0/{PROJECT}/instances/{ready['id']}", token)


def test_a_stock_client_reaches_the_instance_on_its_own_address_at_5432(
    service: support.Service, instance: dict[str, Any]
) -> None:
    (address,) = instance["ip"]
    assert instance["hostname"] == address and instance["port"] == 5432
    network = ipaddress.IPv4Network(service.settings().local_addresses)
    assert ipaddress.IPv4Address(address) in network
    # psql, as a user would run it, with what the API shows: the server that answers is the
    # instance's, on its own address (the machine's own PostgreSQL is on 127.0.0.1:5432).
    query = "SELECT inet_server_addr(), current_setting('listen_addresses')"
    said = support.stock_client(
        ["psql", "-h", address, "-p", "5432", "-U", "shop", "-d", "orders", "-w", "-Atc", query],
        PGPASSWORD=PASSWORD,
    )
    assert said == f"{address}|{address}"


def test_user_connects_and_writes_a_row(instance: dict[str, Any]) -> None:
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
            host=instance["ip"][0],
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


def _path(instance: dict[str, Any], tail: str) -> str:
    return f"/v1.0/{PROJECT}/instances/{instance['id']}/{tail}"


def _show(instance: dict[str, Any], setting: str) -> str:
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="shop",
        password=PASSWORD,
        dbname="orders",
    ) as conn:
        row = conn.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


def _settle(
    service: support.Service, token: str, instance: dict[str, Any], passing: str
) -> dict[str, Any]:
    """Wait until the instance went through `passing` and is ACTIVE + HEALTHY again."""
    seen = service.wait_for(
        token, PROJECT, instance["id"], lambda i: i["status"] in (passing, "ACTIVE"), timeout=30
    )
    assert seen["status"] in (passing, "ACTIVE")
    return service.wait_for(token, PROJECT, instance["id"], support.active_and_healthy)


def test_resize_flavor_resizes_memory_and_keeps_data(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
) -> None:
    assert _show(instance, "shared_buffers") == "128MB"  # flavor 1: 512 MB / 4
    resp = service.request("POST", _path(instance, "action"), token, {"resize": {"flavorRef": "2"}})
    assert resp.status == 202, resp.body
    resized = _settle(service, token, instance, "RESIZE")
    assert resized["flavor"]["id"] == "2"
    assert _show(instance, "shared_buffers") == "256MB"  # flavor 2: 1024 MB / 4
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="shop",
        password=PASSWORD,
        dbname="orders",
    ) as conn:
        assert conn.execute("SELECT name FROM item").fetchall() == [("first",)]
    same = service.request("POST", _path(instance, "action"), token, {"resize": {"flavorRef": "2"}})
    assert same.status == 400


def test_resize_volume_grows_and_never_shrinks(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
) -> None:
    grown = service.request(
        "POST", _path(instance, "action"), token, {"resize": {"volume": {"size": 3}}}
    )
    assert grown.status == 202
    shown = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
    assert shown.body["instance"]["volume"]["size"] == 3
    shrunk = service.request(
        "POST", _path(instance, "action"), token, {"resize": {"volume": {"size": 2}}}
    )
    assert shrunk.status == 400 and "shrink" in shrunk.body["badRequest"]["message"]


def test_access_change_rebinds_and_rewrites_host_rules(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
) -> None:
    hba = service.state_dir / "instances" / instance["id"] / "postgresql" / "data" / "pg_hba.conf"
    (address,) = instance["ip"]
    assert _show(instance, "listen_addresses") == address
    opened = service.request(
        "PUT",
        f"/v1.0/{PROJECT}/instances/{instance['id']}",
        token,
        {"instance": {"access": {"is_public": True, "allowed_cidrs": ["192.0.2.0/24"]}}},
    )
    assert opened.status == 202
    public = _settle(service, token, instance, "REBOOT")
    assert public["access"] == {"is_public": True, "allowed_cidrs": ["192.0.2.0/24"]}
    # Public or not, it listens on its own address alone; the host rules say who may log in.
    assert _show(instance, "listen_addresses") == address
    assert "192.0.2.0/24" in hba.read_text()

    closed = service.request(
        "PUT",
        f"/v1.0/{PROJECT}/instances/{instance['id']}",
        token,
        {"instance": {"access": {"is_public": False, "allowed_cidrs": []}}},
    )
    assert closed.status == 202
    _settle(service, token, instance, "REBOOT")
    assert _show(instance, "listen_addresses") == address
    assert "192.0.2.0/24" not in hba.read_text()


def test_restart_keeps_data(service: support.Service, token: str, instance: dict[str, Any]) -> None:
    resp = service.request("POST", _path(instance, "action"), token, {"restart": {}})
    assert resp.status == 202
    _settle(service, token, instance, "REBOOT")
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="shop",
        password=PASSWORD,
        dbname="orders",
    ) as conn:
        assert conn.execute("SELECT name FROM item").fetchall() == [("first",)]


ALL_PASSWORDS = [
    PASSWORD,
    "first-pw-1-long",
    "second-pw-2-long",
    "Root-chosen-pw-9",
    "pw-123456-long",
]


def test_tasks_show_each_run_with_its_ansible_steps(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
) -> None:
    listed = service.request("GET", _path(instance, "tasks"), token)
    assert listed.status == 200
    tasks = listed.body["tasks"]
    actions = [t["action"] for t in tasks]
    assert actions[0] == "create" and {"resize", "restart", "update_access"} <= set(actions)
    assert all(t["state"] == "SUCCEEDED" and t["requested_by"] == PROJECT for t in tasks)
    # Ansible runs have an rc; a volume resize is a record change, in the trail all the same.
    assert all(t["rc"] == 0 and t["duration"] > 0 for t in tasks if t["runs"])
    (volume,) = [t for t in tasks if t["action"] == "resize_volume"]
    assert volume["runs"] == 0 and volume["message"] == "volume 1 GB to 3 GB"
    raw = listed.raw

    expected_step = {
        "create": "Initialize the cluster",
        "restart": "Restart PostgreSQL",
        "resize": "Write the server's settings",
    }
    for task in tasks:
        shown = service.request("GET", _path(instance, f"tasks/{task['id']}"), token)
        assert shown.status == 200
        raw += shown.raw
        steps = shown.body["task"]["steps"]
        assert all(s["outcome"] in ("ok", "changed", "skipped") for s in steps)
        assert bool(steps) == bool(task["runs"])  # a record change has no Ansible steps
        if task["action"] in expected_step:
            names = {s["task"] for s in steps}
            assert expected_step[task["action"]] in names, names
    cli = service.cli("task", "list", "--instance", instance["id"])
    assert "restart" in cli and "SUCCEEDED" in cli
    create_id = next(t["id"] for t in tasks if t["action"] == "create")
    shown_cli = service.cli("task", "show", create_id)
    assert "postgresql : Initialize the cluster" in shown_cli
    raw += (cli + shown_cli).encode()

    artifacts = b"".join(
        p.read_bytes() for p in (service.state_dir / "runs").rglob("*") if p.is_file()
    )
    for secret in ALL_PASSWORDS:
        assert secret.encode() not in raw, secret
        assert secret.encode() not in artifacts, secret


def test_another_project_cannot_read_the_tasks(
    service: support.Service, instance: dict[str, Any]
) -> None:
    other = service.token("task-snoop")
    resp = service.request("GET", f"/v1.0/task-snoop/instances/{instance['id']}/tasks", other)
    assert resp.status == 404


def test_inventory_plugin_lists_the_instance(
    service: support.Service, token: str, instance: dict[str, Any], tmp_path: Path
) -> None:
    config = tmp_path / "trove_svc.yml"
    config.write_text(f"plugin: trove_svc\nstate_dir: {service.state_dir}\n")
    env = {**service.env(), "ANSIBLE_INVENTORY_PLUGINS": str(ROOT / "inventory_plugins")}
    graph = subprocess.run(
        [str(support.VENV_BIN / "ansible-inventory"), "-i", str(config), "--graph"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    for group in ("@datastore_postgresql:", f"@project_{PROJECT}:", "@status_active:"):
        section = graph.stdout.split(group, 1)
        assert len(section) == 2 and instance["id"] in section[1].split("@", 1)[0], graph.stdout
    host = subprocess.run(
        [str(support.VENV_BIN / "ansible-inventory"), "-i", str(config), "--host", instance["id"]],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    hostvars = json.loads(host.stdout)
    assert hostvars["trove_port"] == instance["port"]
    assert hostvars["postgresql_port"] == instance["port"]
    assert hostvars["ansible_connection"] == "local"


def test_delete_leaves_nothing_behind(
    service: support.Service, token: str, instance: dict[str, Any]
) -> None:
    instance_dir = service.state_dir / "instances" / instance["id"]
    postgres_pid = int(
        (instance_dir / "postgresql" / "data" / "postmaster.pid").read_text().split()[0]
    )
    guest_pid = int((instance_dir / "guest.pid").read_text())
    owner = instance_dir.joinpath("postgresql").owner()
    assert processes.pid_alive(postgres_pid) and processes.pid_alive(guest_pid)
    assert support.guest_queue_exists(service.amqp_url, instance["id"])

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

    assert not processes.pid_alive(postgres_pid)
    assert not processes.pid_alive(guest_pid)
    assert not instance_dir.exists()
    assert not support.guest_queue_exists(service.amqp_url, instance["id"])
    if owner != "root":
        assert subprocess.run(["id", owner], capture_output=True).returncode != 0
    shown = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
    assert shown.status == 404


def test_created_files_are_private(service: support.Service) -> None:
    for path in Path(service.state_dir, "runs").iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
