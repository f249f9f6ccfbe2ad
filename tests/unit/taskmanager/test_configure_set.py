"""A change of hot-standby settings on a replication set, member by member, with the
playbooks and the guests stood in for (against a real SQLite store): the members go in
the order the task names, each written and restarted before the next; a member that fails
stops the change there; a run that lost its task stops before the next member."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests import rows
from trove_svc import catalog, errors, tasks
from trove_svc.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import Configuration, DatastoreVersion, Instance, Task
from trove_svc.taskmanager import configure_flow
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.leases import Lease
from trove_svc.taskmanager.runner import RunResult
from trove_svc.tasks import TaskState

OWNER = "tm-1"
SOURCE, REPLICA = "s-1", "r-1"


@pytest.fixture
def settings(
    tmp_path: Path,
    postgresql_described: list[dict[str, Any]],
    keep_description: Callable[[str, list[dict[str, Any]]], None],
) -> Iterator[Settings]:
    """A source and its replica sharing a group that raises max_connections (a restart's
    worth of change: both still run with the role's 100)."""
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    keep_description("postgresql", postgresql_described)
    Configuration.create(
        id="g-1",
        project_id="p1",
        name="tuned",
        datastore_version=DatastoreVersion.get(),
        values={"max_connections": 150},
        created_at=0,
        updated_at=0,
    )
    for instance_id, port, source in ((SOURCE, 24001, None), (REPLICA, 24002, SOURCE)):
        rows.instance(
            id=instance_id,
            port=port,
            replica_of_id=source,
            configuration_id="g-1",
            configuration_values={"max_connections": "100"},
        )
    yield Settings(state_dir=tmp_path / "state", clock=lambda: 10.0)
    database.close()


class Runner:
    """The playbook runner: records each run; `failing` names the (playbook, instance)
    runs that fail; `after_run` runs after each."""

    def __init__(self, failing: tuple[str, str] | None = None) -> None:
        self.failing = failing
        self.after_run: Callable[[], None] = lambda: None
        self.ran: list[tuple[str, str]] = []

    def run(self, *, ident: str, playbook: str, instance_id: str, **_: Any) -> RunResult:
        self.ran.append((playbook, instance_id))
        self.after_run()
        if (playbook, instance_id) == self.failing:
            return RunResult("failed", 2, "/runs/x", "postgresql : Start PostgreSQL", "no")
        return RunResult("successful", 0, "/runs/x")


class SilentGuests:
    """No guest answers: a restarted replica is fenced rather than told its source."""

    def call_guest(self, instance_id: str, request: Any, context: Any, timeout: float) -> Any:
        raise errors.ServiceUnavailable(f"the guest of {instance_id} does not answer")


def _claim(members: list[str], order: str) -> Claim:
    tasks.record(
        "t-set",
        SOURCE,
        "p1",
        "configure_set",
        "alice",
        "req-1",
        1.0,
        {"members": members, "order": order},
    )
    assert tasks.claim("t-set", OWNER, 1.0, 30.0)
    return Claim(Task.get_by_id("t-set"), OWNER, Lease("t-set", 31.0, 2.0, lambda: 10.0))


def _configure_set(settings: Settings, runner: Runner, claim: Claim) -> None:
    deps = FlowDeps(
        settings,
        cast(Any, runner),
        cast(Any, SilentGuests()),
        cast(Any, None),
        cast(Any, None),
        cast(Any, None),
    )
    configure_flow.configure_set(deps, claim)


def _audit(instance_id: str) -> list[Task]:
    return list(
        Task.select().where((Task.instance_id == instance_id) & (Task.action == "configure"))
    )


def test_a_raise_reaches_the_replica_first_each_member_restarted_before_the_next(
    settings: Settings,
) -> None:
    runner = Runner()
    _configure_set(settings, runner, _claim([REPLICA, SOURCE], "replicas first"))
    assert runner.ran == [
        ("instance_configure.yml", REPLICA),
        ("instance_restart.yml", REPLICA),
        ("instance_configure.yml", SOURCE),
        ("instance_restart.yml", SOURCE),
    ]
    task = Task.get_by_id("t-set")
    assert task.state == TaskState.SUCCEEDED
    assert task.message == f"applied on {REPLICA}, {SOURCE} (replicas first)"
    for member in (REPLICA, SOURCE):
        (done,) = _audit(member)
        assert done.state == TaskState.SUCCEEDED and "t-set" in done.message
        assert Instance.get_by_id(member).configuration_values == {"max_connections": "150"}
        assert not Instance.get_by_id(member).restart_pending


def test_a_member_that_fails_stops_the_change_and_the_others_keep_their_values(
    settings: Settings,
) -> None:
    runner = Runner(failing=("instance_restart.yml", REPLICA))
    _configure_set(settings, runner, _claim([REPLICA, SOURCE], "replicas first"))
    assert SOURCE not in {instance for _, instance in runner.ran}, runner.ran
    task = Task.get_by_id("t-set")
    assert task.state == TaskState.FAILED
    assert task.message.startswith(f"{REPLICA}: The values are written, but the restart failed")
    assert "the members after it keep their values (replicas first)" in task.message
    (failed,) = _audit(REPLICA)
    assert failed.state == TaskState.FAILED
    assert _audit(SOURCE) == []
    assert Instance.get_by_id(SOURCE).configuration_values == {"max_connections": "100"}


def test_a_run_that_lost_its_task_stops_before_the_next_member(settings: Settings) -> None:
    runner = Runner()
    claim = _claim([SOURCE, REPLICA], "source first")

    def canceled_by_a_delete() -> None:
        tasks.end_open(SOURCE, 11.0, TaskState.CANCELED, "Canceled.")
        claim.lease.lose()

    runner.after_run = canceled_by_a_delete
    _configure_set(settings, runner, claim)
    assert runner.ran == [("instance_configure.yml", SOURCE)]
    task = Task.get_by_id("t-set")
    assert task.state == TaskState.CANCELED and task.owner is None
    assert _audit(SOURCE) == [] and _audit(REPLICA) == []
