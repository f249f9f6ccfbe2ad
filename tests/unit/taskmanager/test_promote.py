"""A switchover checks, before each step, that its task is still its own (against a real
SQLite store, with the playbooks and the guests stood in for): ended after the source was
fenced, it has the source take writes again; taken over by another task manager, it leaves
the source to that one; never does it promote the replica."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests import rows
from trove_svc import catalog, status, tasks
from trove_svc.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import Instance, Task
from trove_svc.taskmanager import replication_flows
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.leases import Lease
from trove_svc.taskmanager.runner import RunResult
from trove_svc.tasks import TaskState

OWNER = "tm-1"
SOURCE, REPLICA = "s-1", "r-1"


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance(id=SOURCE, port=24001)
    rows.instance(id=REPLICA, port=24002, replica_of_id=SOURCE, status=status.PROMOTE)
    yield Settings(state_dir=tmp_path / "state", clock=lambda: 10.0)
    database.close()


class Runner:
    """The playbook runner: every run succeeds; `after_run` runs after each."""

    def __init__(self, after_run: Callable[[], None]) -> None:
        self.after_run = after_run
        self.ran: list[tuple[str, str]] = []

    def run(self, *, ident: str, playbook: str, instance_id: str, **_: Any) -> RunResult:
        self.ran.append((playbook, instance_id))
        self.after_run()
        return RunResult("successful", 0, "/runs/x")


class Guests:
    """Every guest answers: caught up at position 5, promoted at 6."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def call_guest(self, instance_id: str, request: Any, context: Any, timeout: float) -> Any:
        self.asked.append((request.method, instance_id))
        return {"position": 6} if request.method == "promote" else {"position": 5, "applied": 5}


def _switchover(settings: Settings, after_run: Callable[[], None]) -> tuple[Runner, Guests]:
    tasks.record("t-p", REPLICA, "p1", "promote", "alice", "req-1", 1.0, {})
    assert tasks.claim("t-p", OWNER, 1.0, 30.0)
    claim = Claim(Task.get_by_id("t-p"), OWNER, Lease("t-p", 31.0, 2.0, lambda: 10.0))
    runner, guests = Runner(after_run), Guests()
    deps = FlowDeps(
        settings,
        cast(Any, runner),
        cast(Any, guests),
        cast(Any, None),
        cast(Any, None),
        cast(Any, None),
    )
    replication_flows.promote(deps, claim)
    return runner, guests


def test_ended_after_the_fence_the_source_takes_writes_again(settings: Settings) -> None:
    def deleted_meanwhile() -> None:
        tasks.end_open(REPLICA, 11.0, TaskState.CANCELED, "Canceled: deleted.")

    runner, guests = _switchover(settings, deleted_meanwhile)
    assert runner.ran == [("instance_replication.yml", SOURCE)]  # the fence, nothing after
    assert ("promote", REPLICA) not in guests.asked
    assert guests.asked[-1] == ("promote", SOURCE)
    assert Instance.get_by_id(REPLICA).replica_of_id == SOURCE
    assert Task.get_by_id("t-p").owner is None


def test_taken_over_after_the_fence_the_source_is_left_to_the_new_owner(
    settings: Settings,
) -> None:
    def taken_over() -> None:
        Task.update(owner="tm-2").where(Task.id == "t-p").execute()

    runner, guests = _switchover(settings, taken_over)
    assert runner.ran == [("instance_replication.yml", SOURCE)]
    assert [method for method, _ in guests.asked] == ["replication_state"]
    task = Task.get_by_id("t-p")
    assert task.owner == "tm-2" and task.state == TaskState.RUNNING
    assert Instance.get_by_id(REPLICA).replica_of_id == SOURCE
