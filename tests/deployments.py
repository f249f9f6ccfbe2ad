"""Deployments for the fault and trust tests: each on a private RabbitMQ node (its test
module's, or the one the session shares), with helpers to read its store and watch its
instances."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from tests import processes, support
from tests.broker_node import BrokerNode

PROJECT = "faults"


def deployment(
    node: BrokerNode, parts: tuple[str, ...] | None = None, **env: str
) -> support.Service:
    return support.Service(
        transport_url=f"amqp://127.0.0.1:{node.amqp_port}/",
        management_url=node.management_url,
        admin_url=(
            f"http://{node.admin_user}:{node.admin_password}@127.0.0.1:{node.management_port}"
        ),
        parts=parts,
        extra_env=env,
    )


def start(services: list[support.Service], service: support.Service) -> support.Service:
    services.append(service)
    service.start()
    return service


def _body(name: str, datastore: str = "postgresql") -> dict[str, Any]:
    return {
        "instance": {
            "name": name,
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": datastore},
        }
    }


def create(service: support.Service, token: str, name: str, datastore: str = "postgresql") -> str:
    created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, _body(name, datastore))
    assert created.status == 200, created.body
    return str(created.body["instance"]["id"])


def store(service: support.Service) -> sqlite3.Connection:
    connection = sqlite3.connect(service.state_dir / "trove-svc.db", timeout=30)
    connection.row_factory = sqlite3.Row
    return connection


def tasks_of(service: support.Service, instance_id: str) -> list[dict[str, Any]]:
    with store(service) as db:
        rows = db.execute(
            "SELECT id, action, state, runs, owner FROM task WHERE instance_id = ?"
            " ORDER BY created_at",
            (instance_id,),
        ).fetchall()
    return [dict(row) for row in rows]


def instance_row(service: support.Service, instance_id: str) -> dict[str, Any]:
    with store(service) as db:
        row = db.execute("SELECT * FROM instance WHERE id = ?", (instance_id,)).fetchone()
    return dict(row) if row else {}


def statuses(
    service: support.Service, token: str, ids: list[str], project: str = PROJECT
) -> dict[str, str]:
    """Each instance's `status/operating_status`, as the API shows it."""
    found = {}
    for instance_id in ids:
        body = service.request("GET", f"/v1.0/{project}/instances/{instance_id}", token).body
        found[instance_id] = f"{body['instance']['status']}/{body['instance']['operating_status']}"
    return found


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.25)


def processes_of(service: support.Service, instance_id: str) -> dict[str, int]:
    """How many guest agents and datastore servers run for the instance."""
    instance_dir = str(service.state_dir / "instances" / instance_id)
    found = processes.processes_mentioning(instance_dir)
    return {
        "guest": processes.guest_agents_mentioning(instance_dir),
        "server": sum(
            ("postgres" in cmd or "mariadbd" in cmd) and "runuser" not in cmd for cmd in found
        ),
    }


def delete_all(service: support.Service, token: str, ids: list[str]) -> None:
    for instance_id in ids:
        assert (
            service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance_id}", token).status
            == 202
        )
    for instance_id in ids:
        try:
            service.wait_gone(token, PROJECT, instance_id, timeout=120)
        except AssertionError:
            row = instance_row(service, instance_id)
            raise AssertionError(
                f"{instance_id} not deleted: {row.get('status')} {row.get('fault_message')} "
                f"{tasks_of(service, instance_id)}\n{service.log_path.read_text()[-3000:]}"
            ) from None
        assert support.leftovers(service, instance_id, None) == []


def cast_again(service: support.Service, task_id: str, instance_id: str) -> None:
    """What a broker redelivery looks like: the task's cast, sealed as the API seals it."""
    from trove_svc.bus.client import Bus
    from trove_svc.security.keys import KeyRing, ServiceKeys
    from trove_wire.envelope import Context

    keys = ServiceKeys.load(service.settings().service_key_path)
    bus = Bus(service.amqp_url, KeyRing(keys))
    bus.cast_task("run_task", {"task_id": task_id, "instance_id": instance_id}, Context())
    bus.close()


def error_fault(service: support.Service, token: str, instance_id: str) -> str:
    shown = service.wait_for(
        token, PROJECT, instance_id, lambda i: i["status"] == "ERROR", timeout=120
    )
    return str(shown["fault"]["message"])
