"""No work lost or done twice when the broker, a task manager or a guest fails.

Every test here runs its deployments against a private RabbitMQ node (with the management
plugin) that the module starts, stops and restarts; the system broker is never touched.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from tests import processes, support
from tests.broker_node import BrokerNode
from tests.deployments import (
    PROJECT,
    _body,
    cast_again,
    create,
    delete_all,
    deployment,
    error_fault,
    instance_row,
    processes_of,
    start,
    statuses,
    store,
    tasks_of,
    wait_until,
)
from trove_wire import topology

pytestmark = [pytest.mark.integration, pytest.mark.long]


def test_broker_outage_loses_and_duplicates_nothing(
    node: BrokerNode, started: list[support.Service]
) -> None:
    """5 creates, the broker stopped for about 15 s while they build and started again
    before they finish (a guest reports HEALTHY over the bus, so none can finish during
    it); meanwhile what needs the bus answers 503. Every instance comes up once, with one
    run."""
    service = start(started, deployment(node))
    token = service.token(PROJECT)
    ids = [create(service, token, f"outage-{n}") for n in range(5)]
    wait_until(
        lambda: any(instance_row(service, i)["current_step"] for i in ids),
        60,
        "a build starts",
    )
    stopped_at = time.monotonic()
    node.stop()
    # Meanwhile, what needs the bus answers 503 in time and records nothing.
    asked = time.monotonic()
    refused = service.request("POST", f"/v1.0/{PROJECT}/instances", token, _body("during-outage"))
    assert refused.status == 503 and time.monotonic() - asked < 15
    with store(service) as db:
        assert (
            db.execute("SELECT count(*) FROM instance WHERE name = 'during-outage'").fetchone()[0]
            == 0
        )
    time.sleep(max(0.0, 15 - (time.monotonic() - stopped_at) - 4.5))
    node.start()
    outage = time.monotonic() - stopped_at
    unfinished = [i for i in ids if instance_row(service, i)["status"] == "BUILD"]
    # Long enough to matter, and ended while builds were still in flight: how long the node
    # took to stop and start again beyond that is the machine's, not the service's.
    assert outage >= 13 and unfinished, (outage, statuses(service, token, ids))

    wait_until(
        lambda: all(s == "ACTIVE/HEALTHY" for s in statuses(service, token, ids).values()),
        240,
        "every instance ACTIVE and HEALTHY",
    )
    for instance_id in ids:
        runs = [(t["action"], t["state"], t["runs"]) for t in tasks_of(service, instance_id)]
        said = [
            line
            for line in service.log_path.read_text().splitlines()
            if instance_id in line or "took over" in line or "port" in line
        ]
        assert runs == [("create", "SUCCEEDED", 1)], "\n".join(said[-40:])
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
    # The dead run's inventory went with it; the second run removed its own.
    assert list((service.state_dir / "runs").glob("*/*.hosts.json")) == []
    assert processes_of(service, instance_id) == {"guest": 1, "server": 1}

    # The same create delivered again after it succeeded changes nothing.
    before = (tasks_of(service, instance_id), instance_row(service, instance_id))
    running = sorted(processes.processes_mentioning(str(service.state_dir / "instances")))
    task_id = before[0][0]["id"]
    cast_again(service, task_id, instance_id)
    wait_until(
        lambda: f"task {task_id} is finished" in service.log_path.read_text(),
        30,
        "the task manager drops the redelivery",
    )
    assert (tasks_of(service, instance_id), instance_row(service, instance_id)) == before
    assert sorted(processes.processes_mentioning(str(service.state_dir / "instances"))) == running


def test_a_broker_alarm_longer_than_the_lease_runs_a_create_once(
    node: BrokerNode, started: list[support.Service]
) -> None:
    """Publishes blocked (a memory alarm) for three leases while a create runs on task
    manager A, whose schedules meanwhile wait to cast a backup; task manager B runs
    throughout. A keeps its lease, B never takes the create over: one run, SUCCEEDED."""
    # As the other fault tests: with 3 s, a renewal came too late once under CI's load
    # (four workers on two cores) and task manager B took the create over after the alarm.
    lease = 6
    service = start(
        started,
        deployment(
            node,
            parts=("api", "conductor", "taskmanager"),
            TROVE_SVC_TASK_LEASE=str(lease),
            # Ports of its own: its create holds a port, unused, while other tests build.
            **support.port_range_env(*support.reserved_ports(0)),
        ),
    )
    token = service.token(PROJECT)
    scheduled = create(service, token, "scheduled", "redis")
    service.wait_for(token, PROJECT, scheduled, support.active_and_healthy)
    made = service.request(
        "POST",
        f"/v1.0/{PROJECT}/instances/{scheduled}/schedules",
        token,
        {"schedule": {"name": "during-the-alarm", "cron": "0 0 1 1 *"}},
    )
    assert made.status == 200, made.body
    schedule_id = made.body["schedule"]["id"]

    instance_id = create(service, token, "leased")
    wait_until(
        lambda: "postgresql" in (instance_row(service, instance_id)["current_step"] or ""),
        60,
        "the create's playbook reaches the datastore",
    )
    (task,) = tasks_of(service, instance_id)
    run_dir = service.state_dir / "runs" / task["id"]
    # The playbook goes no further until the alarm is over, as on a slow host.
    playbook = processes.pids_mentioning(str(run_dir))
    assert playbook
    processes.signal_all(playbook, signal.SIGSTOP)
    node.block_publishes()
    blocked_at = time.time()
    try:
        with store(service) as db:
            db.execute(
                "UPDATE schedule SET next_run_at = ? WHERE id = ?", (blocked_at, schedule_id)
            )
        # A, alone so far, takes the schedule's run: it records the backup's task, then
        # the task's cast waits on the alarm.
        wait_until(
            lambda: backup_states(service, scheduled) == ["QUEUED"],
            15,
            "task manager A starts the scheduled backup",
        )
        service.start_part("taskmanager")
        time.sleep(3 * lease)
        assert backup_states(service, scheduled) == ["QUEUED"]
        assert tasks_of(service, instance_id) == [task]
        with store(service) as db:
            (renewed_until,) = db.execute(
                "SELECT lease_expires_at FROM task WHERE id = ?", (task["id"],)
            ).fetchone()
        assert renewed_until > blocked_at + 2 * lease
    finally:
        node.unblock_publishes()
        processes.signal_all(playbook, signal.SIGCONT)

    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=180)
    said = [
        line for line in service.log_path.read_text().splitlines() if "gunicorn.access" not in line
    ]
    assert [(t["action"], t["state"], t["runs"]) for t in tasks_of(service, instance_id)] == [
        ("create", "SUCCEEDED", 1)
    ], "\n".join(said[-60:])
    assert [p.name for p in run_dir.parent.glob(f"{task['id']}*")] == [run_dir.name]
    with store(service) as db:
        (live_task_managers,) = db.execute(
            "SELECT count(*) FROM worker WHERE kind = 'taskmanager' AND seen_at > ?",
            (blocked_at,),
        ).fetchone()
    assert live_task_managers == 2
    log = service.log_path.read_text()
    assert "took over" not in log and "no longer ours" not in log
    assert processes_of(service, instance_id) == {"guest": 1, "server": 1}


def backup_states(service: support.Service, instance_id: str) -> list[str]:
    return [t["state"] for t in tasks_of(service, instance_id) if t["action"] == "backup"]


def test_two_deployments_on_one_broker_keep_apart(
    node: BrokerNode, started: list[support.Service]
) -> None:
    services = [start(started, deployment(node)) for _ in range(2)]
    assert services[0].settings().vhost != services[1].settings().vhost
    outcomes: dict[int, str] = {}

    def lifecycle(index: int, service: support.Service) -> None:
        token = service.token(PROJECT)
        instance_id = create(service, token, f"side-{index}")
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=240)
        restarted = service.request(
            "POST", f"/v1.0/{PROJECT}/instances/{instance_id}/action", token, {"restart": {}}
        )
        assert restarted.status == 202
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=240)
        delete_all(service, token, [instance_id])
        outcomes[index] = "done"

    def lifecycle_told(index: int, service: support.Service) -> None:
        """The lifecycle, its failure kept as its outcome for the assertion to show."""
        try:
            lifecycle(index, service)
        except Exception as failure:
            outcomes[index] = f"{type(failure).__name__}: {failure}"

    threads = [
        threading.Thread(target=lifecycle_told, args=(index, service))
        for index, service in enumerate(services)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert outcomes == {0: "done", 1: "done"}
    for service in services:
        lines = service.log_path.read_text().splitlines()
        wrong = [n for n, line in enumerate(lines) if "refused a" in line or "Traceback" in line]
        assert not wrong, "\n".join("\n".join(lines[n : n + 12]) for n in wrong[:3])


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
            " requested_by_project, request_id, created_at, runs, args)"
            " VALUES (?, ?, ?, 'resize', 'QUEUED', 'test', ?, '', ?, 0,"
            ' \'{"flavor_id": "gone"}\')',
            (task_id, instance_id, PROJECT, PROJECT, time.time()),
        )
        db.execute("UPDATE instance SET status = 'RESIZE' WHERE id = ?", (instance_id,))
    cast_again(service, task_id, instance_id)
    message = error_fault(service, token, instance_id)
    assert f"failed on each of {topology.MAX_ATTEMPTS} attempts" in message
    assert "dead-lettered" in message
    (task,) = [t for t in tasks_of(service, instance_id) if t["id"] == task_id]
    assert task["state"] == "FAILED" and task["owner"] is None


def test_an_address_taken_before_start_is_given_up_for_another(
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
        while (port := (row := instance_row(service, instance_id)).get("port")) is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        address = row["host"]
        squatter.bind((address, port))
        squatter.listen()
        shown = service.wait_for(
            token, PROJECT, instance_id, support.active_and_healthy, timeout=120
        )
    finally:
        squatter.close()
    assert (shown["ip"], shown["port"]) != ([address], port)
    assert [(t["state"], t["runs"]) for t in tasks_of(service, instance_id)] == [("SUCCEEDED", 2)]
    delete_all(service, token, [instance_id])
