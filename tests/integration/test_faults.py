"""No work lost or done twice when the broker, a task manager or a guest fails.

Every test here runs its deployments against a private RabbitMQ node (with the management
plugin) that the module starts, stops and restarts; the system broker is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import support
from tests.broker_node import BrokerNode

pytestmark = pytest.mark.integration

PROJECT = "faults"


@pytest.fixture(scope="module")
def node() -> Iterator[BrokerNode]:
    broker = BrokerNode()
    broker.start()
    yield broker
    broker.destroy()


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


@pytest.fixture
def started(node: BrokerNode) -> Iterator[list[support.Service]]:
    """Deployments a test starts; all are cleaned up after it."""
    services: list[support.Service] = []
    yield services
    for service in services:
        service.cleanup()


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


def statuses(service: support.Service, token: str, ids: list[str]) -> dict[str, str]:
    found = {}
    for instance_id in ids:
        body = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance_id}", token).body
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
    found = support.processes_mentioning(instance_dir)
    return {
        "guest": sum("trove_guest" in cmd for cmd in found),
        "server": sum(("postgres" in cmd or "mariadbd" in cmd) and "runuser" not in cmd
                      for cmd in found),
    }  # fmt: skip


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


def test_broker_outage_loses_and_duplicates_nothing(
    node: BrokerNode, started: list[support.Service]
) -> None:
    """Three times: 10 creates, the broker stopped for about 15 s while they build and
    started again before they finish; every instance comes up once, with one run."""
    service = start(started, deployment(node))
    token = service.token(PROJECT)
    for round_number in range(3):
        ids = [create(service, token, f"outage-{round_number}-{n}") for n in range(10)]
        wait_until(
            lambda ids=ids: any(instance_row(service, i)["current_step"] for i in ids),
            60,
            "a build starts",
        )
        stopped_at = time.monotonic()
        node.stop()
        time.sleep(max(0.0, 15 - (time.monotonic() - stopped_at) - 4.5))
        node.start()
        outage = time.monotonic() - stopped_at
        unfinished = [i for i in ids if instance_row(service, i)["status"] == "BUILD"]
        assert 13 <= outage <= 30 and unfinished, (outage, statuses(service, token, ids))

        wait_until(
            lambda ids=ids: all(
                s == "ACTIVE/HEALTHY" for s in statuses(service, token, ids).values()
            ),
            240,
            "every instance ACTIVE and HEALTHY",
        )
        for instance_id in ids:
            assert [
                (t["action"], t["state"], t["runs"]) for t in tasks_of(service, instance_id)
            ] == [("create", "SUCCEEDED", 1)]
            assert processes_of(service, instance_id) == {"guest": 1, "server": 1}
        assert sorted(p.name for p in (service.state_dir / "instances").iterdir()) == sorted(ids)
        assert list((service.state_dir / "secrets").iterdir()) == []
        delete_all(service, token, ids)


def test_a_killed_task_manager_run_is_taken_over(
    node: BrokerNode, started: list[support.Service]
) -> None:
    service = start(
        started,
        deployment(
            node,
            parts=("api", "conductor", "taskmanager", "taskmanager"),
            TROVE_SVC_TASK_LEASE="6",
        ),
    )
    token = service.token(PROJECT)
    instance_id = create(service, token, "takeover")
    wait_until(
        lambda: "postgresql" in (instance_row(service, instance_id)["current_step"] or ""),
        60,
        "the create's playbook reaches the datastore",
    )
    owner = tasks_of(service, instance_id)[0]["owner"]
    owner_pid = int(owner.split(":")[2])
    assert owner_pid in service.pids_of("taskmanager")
    os.kill(owner_pid, signal.SIGKILL)

    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
    assert [(t["state"], t["runs"], t["owner"]) for t in tasks_of(service, instance_id)] == [
        ("SUCCEEDED", 2, None)
    ]
    assert list((service.state_dir / "secrets").iterdir()) == []
    assert processes_of(service, instance_id) == {"guest": 1, "server": 1}

    # The same create delivered again after it succeeded changes nothing.
    before = (tasks_of(service, instance_id), instance_row(service, instance_id))
    processes = sorted(support.processes_mentioning(str(service.state_dir / "instances")))
    task_id = before[0][0]["id"]
    _cast_again(service, task_id, instance_id)
    wait_until(
        lambda: f"task {task_id} is finished" in service.log_path.read_text(),
        30,
        "the task manager drops the redelivery",
    )
    assert (tasks_of(service, instance_id), instance_row(service, instance_id)) == before
    assert sorted(support.processes_mentioning(str(service.state_dir / "instances"))) == processes


def _cast_again(service: support.Service, task_id: str, instance_id: str) -> None:
    """What a broker redelivery looks like: the task's cast, sealed as the API seals it."""
    from trove_svc.bus.client import Bus
    from trove_svc.keys import KeyRing, ServiceKeys
    from trove_wire.envelope import Context

    keys = ServiceKeys.load(service.settings().service_key_path)
    bus = Bus(service.amqp_url, KeyRing(keys))
    bus.cast_task("run_task", {"task_id": task_id, "instance_id": instance_id}, Context())
    bus.close()


def test_two_deployments_on_one_broker_keep_apart(
    node: BrokerNode, started: list[support.Service]
) -> None:
    services = [start(started, deployment(node)) for _ in range(2)]
    assert services[0].settings().vhost != services[1].settings().vhost
    outcomes: dict[int, str] = {}

    def lifecycle(index: int, service: support.Service) -> None:
        token = service.token(PROJECT)
        instance_id = create(service, token, f"side-{index}")
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
        restarted = service.request(
            "POST", f"/v1.0/{PROJECT}/instances/{instance_id}/action", token, {"restart": {}}
        )
        assert restarted.status == 202
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
        delete_all(service, token, [instance_id])
        outcomes[index] = "done"

    threads = [
        threading.Thread(target=lifecycle, args=(index, service))
        for index, service in enumerate(services)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert outcomes == {0: "done", 1: "done"}
    for service in services:
        log = service.log_path.read_text()
        assert "refused a" not in log and "Traceback" not in log


def _answers(service: support.Service) -> bool:
    try:
        return service.request("GET", "/", None).status == 200
    except OSError:
        return False


def _fault(service: support.Service, token: str, instance_id: str) -> str:
    shown = service.wait_for(
        token, PROJECT, instance_id, lambda i: i["status"] == "ERROR", timeout=45
    )
    return str(shown["fault"]["message"])


def test_every_wait_has_a_limit_and_delete_works_from_any_state(
    node: BrokerNode, started: list[support.Service]
) -> None:
    service = start(
        started,
        deployment(
            node,
            parts=("api", "conductor"),
            TROVE_SVC_LIMIT_QUEUED="4",
            TROVE_SVC_LIMIT_BUILD="60",
        ),
    )
    token = service.token(PROJECT)
    # No task manager: the create is never taken.
    never_built = create(service, token, "never-built")
    assert "No task manager took the create task within 4 s" in _fault(service, token, never_built)
    assert [t["state"] for t in tasks_of(service, never_built)] == ["FAILED"]

    # A task manager that takes tasks and then stops answering.
    service.stop()
    service.part_processes.clear()
    service.extra_env.update(
        TROVE_SVC_LIMIT_QUEUED="600",
        TROVE_SVC_LIMIT_REBOOT="5",
        TROVE_SVC_LIMIT_RESIZE="5",
        # A real delete of a building instance waits for the build to stop, then tears
        # down: give it room.
        TROVE_SVC_LIMIT_SHUTDOWN="15",
    )
    for part in ("api", "conductor", "taskmanager"):
        service.start_part(part)
    wait_until(lambda: _answers(service), 30, "the API answers")
    active = create(service, token, "stuck")
    service.wait_for(token, PROJECT, active, support.active_and_healthy, timeout=120)
    (taskmanager,) = service.pids_of("taskmanager")

    def stuck(action: str, body: dict[str, Any] | None, status: str, limit: int = 5) -> str:
        os.kill(taskmanager, signal.SIGSTOP)
        if body is None:
            answer = service.request("DELETE", f"/v1.0/{PROJECT}/instances/{active}", token)
        else:
            answer = service.request(
                "POST", f"/v1.0/{PROJECT}/instances/{active}/action", token, body
            )
        assert answer.status == 202, answer.body
        message = _fault(service, token, active)
        assert f"stayed {status} for more than {limit} s" in message, message
        os.kill(taskmanager, signal.SIGCONT)
        return message

    stuck("resize", {"resize": {"flavorRef": "2"}}, "RESIZE")
    stuck("restart", {"restart": {}}, "REBOOT")
    # A restart from ERROR brings it back; then a stuck delete.
    answer = service.request(
        "POST", f"/v1.0/{PROJECT}/instances/{active}/action", token, {"restart": {}}
    )
    assert answer.status == 202
    service.wait_for(token, PROJECT, active, support.active_and_healthy, timeout=120)
    stuck("delete", None, "SHUTDOWN", limit=15)
    assert all(t["state"] in ("SUCCEEDED", "FAILED") for t in tasks_of(service, active))

    # Delete works from ERROR, and from BUILD (while the create still runs).
    building = create(service, token, "deleted-while-building")
    wait_until(
        lambda: instance_row(service, building)["current_step"] is not None, 60, "a build starts"
    )
    delete_all(service, token, [active, never_built, building])
    assert [t["state"] for t in tasks_of(service, building)] == ["CANCELED", "SUCCEEDED"]


def test_a_task_that_fails_every_time_is_dead_lettered(
    node: BrokerNode, started: list[support.Service]
) -> None:
    """A resize whose flavor vanished before it ran: each attempt fails unexpectedly,
    the message goes round its delivery limit, then to the dead letters."""
    service = start(started, deployment(node))
    token = service.token(PROJECT)
    instance_id = create(service, token, "poisoned")
    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
    task_id = "00000000-0000-4000-8000-00000000dead"
    with store(service) as db:
        db.execute(
            "INSERT INTO task (id, instance_id, project_id, action, state, requested_by,"
            " request_id, created_at, runs, args) VALUES (?, ?, ?, 'resize', 'QUEUED', 'test',"
            " '', ?, 0, '{\"flavor_id\": \"gone\"}')",
            (task_id, instance_id, PROJECT, time.time()),
        )
        db.execute("UPDATE instance SET status = 'RESIZE' WHERE id = ?", (instance_id,))
    _cast_again(service, task_id, instance_id)
    message = _fault(service, token, instance_id)
    assert "failed on each of 5 attempts" in message and "dead-lettered" in message
    (task,) = [t for t in tasks_of(service, instance_id) if t["id"] == task_id]
    assert task["state"] == "FAILED" and task["owner"] is None


def test_a_port_taken_before_start_is_given_up_for_another(
    node: BrokerNode, started: list[support.Service]
) -> None:
    service = start(started, deployment(node))
    token = service.token(PROJECT)
    instance_id = create(service, token, "port-squatted")
    squatter = socket.socket()
    # As the datastores do: a port whose last connection is in TIME_WAIT can be taken.
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        deadline = time.monotonic() + 30
        while (port := instance_row(service, instance_id).get("port")) is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        shown = service.wait_for(
            token, PROJECT, instance_id, support.active_and_healthy, timeout=120
        )
    finally:
        squatter.close()
    assert shown["port"] != port
    assert [(t["state"], t["runs"]) for t in tasks_of(service, instance_id)] == [("SUCCEEDED", 2)]
    delete_all(service, token, [instance_id])
