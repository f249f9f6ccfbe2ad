"""A control plane on two nodes, as docs/several-machines.md sets it up: each node its own
state directory and its own API, task manager and conductor; one PostgreSQL store; one
three-node RabbitMQ cluster (private nodes, tests/broker_node.py); instances on a pool of
two SSH hosts (tests/ssh_pool.py). The second node joins the first with `trove-svc setup
--join`, given once the join file the first wrote.

Six creates, half sent to each API; mid-build one node's task manager is killed and one
broker node stopped: all six end HEALTHY with exactly one SUCCEEDED create task each.
Then a schedule due every minute, whose step both nodes run at each minute's due time
(the injected clock of test_schedules: three minutes of schedule in seconds), is decided
exactly once a minute: one scheduled backup a minute, named after it, made on the
instance's pool host and copied to the control plane's repository."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests import bare, ssh_pool, support
from tests.broker_node import BrokerCluster
from tests.deployments import statuses, wait_until
from trove_svc.process.components import Runtime
from trove_svc.store.db import open_store
from trove_svc.store.models import database_proxy
from trove_svc.taskmanager.service import TaskManager

pytestmark = [pytest.mark.integration, pytest.mark.long]

PROJECT = "nodes"
CREATES = 6
MINUTES = 3
# Ports no other deployment of this worker meets while the module runs: the last two for
# the hosts' sshd, the rest for the instances.
POOL_PORTS = support.reserved_ports(1)
SSH_FIRST_PORT = POOL_PORTS[1] - 1
PARTS = ("api", "taskmanager", "conductor")


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerCluster]:
    cluster = BrokerCluster.of(3)
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def store_url() -> Iterator[str]:
    with bare.store_server("postgresql") as url:
        yield url


@pytest.fixture(scope="module")
def pool() -> Iterator[ssh_pool.Pool]:
    hosts = ssh_pool.two_hosts(
        support.shared_tmp_dir("tsn-"),
        first_port=SSH_FIRST_PORT,
        memory_mb=(4096, 4096),
        disk_gb=8,
    )
    hosts.start()
    yield hosts
    hosts.cleanup()


def _repositories(pool: ssh_pool.Pool) -> Path:
    return pool.directory / "backup-repositories"


def _node(
    broker: BrokerCluster, store_url: str, pool: ssh_pool.Pool, join_file: Path | None
) -> support.Service:
    first = broker.nodes[0]
    return support.Service(
        transport_url=broker.amqp_url().replace(f"{first.admin_user}:{first.admin_password}@", ""),
        management_url=broker.management_url,
        admin_url=f"http://{first.admin_user}:{first.admin_password}@127.0.0.1:{first.management_port}",
        parts=PARTS,
        join_file=join_file,
        extra_env={
            # The first node is given the store; the second has it from the join file.
            **({} if join_file else {"TROVE_SVC_DATABASE_URL": store_url}),
            "TROVE_SVC_COMPUTE_PROVIDER": "ssh",
            "TROVE_SVC_HOST_POOL": str(pool.inventory),
            # One filesystem both nodes mount, as the page says (here: one directory).
            "TROVE_SVC_BACKUP_REPOSITORIES": str(_repositories(pool)),
            "TROVE_SVC_TASK_LEASE": "6",
            "TROVE_SVC_WORKER_SEEN_WITHIN": "10",
            **support.port_range_env(POOL_PORTS[0], SSH_FIRST_PORT - 1),
        },
    )


@pytest.fixture(scope="module")
def nodes(
    broker: BrokerCluster, store_url: str, pool: ssh_pool.Pool
) -> Iterator[list[support.Service]]:
    first = _node(broker, store_url, pool, None)
    started = [first]
    join_file = first.state_dir.parent / f"{first.state_dir.name}.join.json"
    try:
        first.setup()  # makes the service's account, which the pool's key is handed to
        pool.lend_key_to(first.settings().service_user)
        first.start()
        first.cli("join-file", str(join_file))
        assert join_file.stat().st_mode & 0o777 == 0o600
        second = _node(broker, store_url, pool, join_file)
        started.append(second)
        second.start()
        join_file.unlink()  # given once: the second node keeps what it needs
        yield started
    finally:
        join_file.unlink(missing_ok=True)
        for node in reversed(started):
            node.cleanup()


def _store(url: str) -> psycopg.Connection[dict[str, Any]]:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def _tasks(url: str, action: str) -> list[dict[str, Any]]:
    with _store(url) as db:
        return db.execute(
            "SELECT id, instance_id, action, state, runs, owner, message FROM task"
            " WHERE action = %s ORDER BY created_at",
            (action,),
        ).fetchall()


def _sees_both_nodes(node: support.Service) -> bool:
    """Healthy, and both nodes' task managers and conductors seen (the store is one)."""
    answer = node.request("GET", "/healthcheck", None)
    seen = answer.body["sees"]
    return answer.status == 200 and seen["taskmanagers"] == seen["conductors"] == 2


def _what_was_said(nodes: list[support.Service], pool: ssh_pool.Pool, ids: list[str]) -> str:
    """For a failure's message: what the nodes logged of these instances, and the end of
    their guests' logs."""
    said = []
    for node in nodes:
        lines = node.log_path.read_text().splitlines()
        said += [line for line in lines if any(i in line and "GET /" not in line for i in ids)]
    for instance_id in ids:
        for log in pool.directory.glob(f"*/instances/{instance_id}/guest.log"):
            said += [f"{log}:", *log.read_text().splitlines()[-40:]]
    return "\n".join(said[-200:])


def _create(node: support.Service, token: str, name: str) -> str:
    return node.create(token, PROJECT, name, datastore={"type": "redis"})


def test_two_nodes_share_the_work_and_survive_a_task_manager_and_a_broker_node(
    nodes: list[support.Service], broker: BrokerCluster, store_url: str, pool: ssh_pool.Pool
) -> None:
    first, second = nodes
    # Each node's health check sees the same store, a broker node, and both nodes' workers.
    for node in nodes:
        try:
            wait_until(lambda node=node: _sees_both_nodes(node), 30, "each node healthy")
        except AssertionError:
            answer = node.request("GET", "/healthcheck", None)
            raise AssertionError(f"{answer.raw!r}\n{node.log_path.read_text()[-5000:]}") from None
        seen = node.request("GET", "/healthcheck", None).body["sees"]
        assert seen["store"] == "postgresql" and seen["broker_node"], seen
    # A token made on one node is good on the other: one store.
    token = first.token(PROJECT)
    ids = [_create((first, second)[n % 2], token, f"several-{n}") for n in range(CREATES)]

    def first_node_runs_a_create() -> bool:
        owners = [t["owner"] or "" for t in _tasks(store_url, "create")]
        pids = {str(pid) for pid in first.pids_of("taskmanager")}
        return any(owner.split(":")[2:3] and owner.split(":")[2] in pids for owner in owners)

    wait_until(first_node_runs_a_create, 90, "the first node's task manager runs a create")
    (killed,) = first.pids_of("taskmanager")
    held = [t["id"] for t in _tasks(store_url, "create") if f":{killed}:" in (t["owner"] or "")]
    os.kill(killed, signal.SIGKILL)
    broker.nodes[1].stop()
    assert broker.running_nodes() == 2

    # One task manager builds what both were building, four at a time, after the killed
    # one's leases run out: on a machine half as fast as usual that took over 300 s.
    try:
        wait_until(
            lambda: set(statuses(second, token, ids, PROJECT).values()) == {"ACTIVE/HEALTHY"},
            600,
            "all six ACTIVE and HEALTHY",
        )
    except AssertionError:
        shown = statuses(second, token, ids, PROJECT)
        stuck = [i for i, s in shown.items() if s != "ACTIVE/HEALTHY"]
        raise AssertionError(
            f"{shown}\n{_tasks(store_url, 'create')}\n{_what_was_said(nodes, pool, stuck)}"
        ) from None
    creates = _tasks(store_url, "create")
    assert sorted(t["instance_id"] for t in creates) == sorted(ids), creates
    assert {t["state"] for t in creates} == {"SUCCEEDED"}, creates
    # What the killed task manager held was taken over by the other node, once each.
    said = second.log_path.read_text()
    assert held and all(f"task {task}: its owner stopped renewing" in said for task in held)
    # Both APIs show the same: one store.
    assert statuses(first, token, ids, PROJECT) == statuses(second, token, ids, PROJECT)
    # The first node's health check says what it now misses of its own: nothing, the
    # second node's task manager is seen.
    seen = first.request("GET", "/healthcheck", None).body["sees"]
    assert seen["taskmanagers"] >= 1 and seen["conductors"] == 2, seen

    _a_schedule_due_every_minute_runs_once_a_minute(
        nodes, token, ids[0], store_url, _repositories(pool)
    )


def _run_schedules_at(runs: list[TaskManager], now: float) -> None:
    """Every node's schedule step at once, each with its clock at `now`."""
    start = threading.Barrier(len(runs))

    def step(manager: TaskManager) -> None:
        start.wait()
        manager.run_schedules()

    threads = [threading.Thread(target=step, args=(manager,)) for manager in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def _wait_for_backup_tasks_ended(store_url: str, instance_id: str, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        backups = [t for t in _tasks(store_url, "backup") if t["instance_id"] == instance_id]
        if len(backups) >= count and all(t["state"] not in ("QUEUED", "RUNNING") for t in backups):
            return
        time.sleep(0.5)
    raise AssertionError(f"backup {count} of {instance_id} did not end")


def _node_schedule_step(node: support.Service, clock: list[float]) -> TaskManager:
    settings = dataclasses.replace(node.settings(), clock=lambda: clock[0])
    return TaskManager(Runtime.load(settings).flow_deps())


def _next_run_at(store_url: str, schedule_id: str) -> float:
    with _store(store_url) as db:
        row = db.execute("SELECT next_run_at FROM schedule WHERE id = %s", (schedule_id,))
        return float(row.fetchone()["next_run_at"])


def _a_schedule_due_every_minute_runs_once_a_minute(
    nodes: list[support.Service], token: str, instance_id: str, store_url: str, repositories: Path
) -> None:
    schedules = f"/v1.0/{PROJECT}/instances/{instance_id}/schedules"
    made = nodes[1].request(
        "POST", schedules, token, {"schedule": {"name": "minutely", "cron": "* * * * *"}}
    )
    assert made.status == 200, made.body
    schedule_id = made.body["schedule"]["id"]
    clock = [0.0]
    previous = database_proxy.obj
    database = open_store(store_url)
    managers = [_node_schedule_step(node, clock) for node in nodes]
    try:
        due = _next_run_at(store_url, schedule_id)
        slots = []
        for _ in range(MINUTES):
            clock[0] = due
            _run_schedules_at(managers, due)
            slots.append(due)
            due = _next_run_at(store_url, schedule_id)
            assert due == slots[-1] + 60
            # The minute's backup ends before the next minute (seconds, not a minute).
            _wait_for_backup_tasks_ended(store_url, instance_id, len(slots))
    finally:
        for manager in managers:
            manager.deps.bus.close()
        database.close()
        database_proxy.initialize(previous)
    stamps = [time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(slot)) for slot in slots]
    backups = [t for t in _tasks(store_url, "backup") if t["instance_id"] == instance_id]
    with _store(store_url) as db:
        named = db.execute(
            "SELECT id, name, state FROM backup WHERE instance_id = %s", (instance_id,)
        ).fetchall()
    # One backup a minute, whichever node's step claimed it, made on the instance's pool
    # host and copied to the control plane's repository.
    assert len(backups) == MINUTES, json.dumps(backups, default=str)
    assert {t["state"] for t in backups} == {"SUCCEEDED"}, json.dumps(backups, default=str)
    assert sorted(b["name"] for b in named) == [f"minutely {s}" for s in stamps]
    assert {b["state"] for b in named} == {"COMPLETED"}
    copied = {p.name.removesuffix(".tar.zst") for p in (repositories / instance_id).iterdir()}
    assert copied == {b["id"] for b in named}
