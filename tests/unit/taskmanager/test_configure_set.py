"""A change of hot-standby settings on a replication set, member by member, with the
playbooks and the guests stood in for (against a real SQLite store): the members go in
the order the task names, each written and restarted before the next; a member that fails
stops the change there; a run that lost its task stops before the next member."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import INSTANCE_PORT, SOURCE_PORT, Effects
from trove_svc.domain import tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Configuration, DatastoreVersion, Instance, Task
from trove_svc.taskmanager import configure_flow
from trove_svc.taskmanager.deps import Claim

SOURCE, REPLICA = "s-1", "r-1"


@pytest.fixture
def replication_set(
    effects: Effects,
    postgresql_described: list[dict[str, Any]],
    keep_description: Callable[[str, list[dict[str, Any]]], None],
) -> Effects:
    """A source and its replica sharing a group that raises max_connections (a restart's
    worth of change: both still run with the role's 100). No guest answers: a restarted
    replica is fenced rather than told its source."""
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
    for instance_id, port, source in (
        (SOURCE, SOURCE_PORT, None),
        (REPLICA, INSTANCE_PORT, SOURCE),
    ):
        rows.instance(
            id=instance_id,
            port=port,
            replica_of_id=source,
            configuration_id="g-1",
            configuration_values={"max_connections": "100"},
        )
    effects.bus.time_out("add_replication_account")
    return effects


def _claim(effects: Effects, members: list[str], order: str) -> Claim:
    return effects.claim("configure_set", SOURCE, {"members": members, "order": order})


def _ran(effects: Effects) -> list[tuple[str, str]]:
    return [(run.playbook, run.instance_id) for run in effects.runner.ran]


def _audit(instance_id: str) -> list[Task]:
    return list(
        Task.select().where((Task.instance_id == instance_id) & (Task.action == "configure"))
    )


def test_a_raise_reaches_the_replica_first_each_member_restarted_before_the_next(
    replication_set: Effects,
) -> None:
    effects = replication_set
    configure_flow.configure_set(effects.deps, _claim(effects, [REPLICA, SOURCE], "replicas first"))
    assert _ran(effects) == [
        ("instance_configure.yml", REPLICA),
        ("instance_restart.yml", REPLICA),
        ("instance_configure.yml", SOURCE),
        ("instance_restart.yml", SOURCE),
    ]
    task = Task.get_by_id("t-1")
    assert task.state == TaskState.SUCCEEDED
    assert task.message == f"applied on {REPLICA}, {SOURCE} (replicas first)"
    for member in (REPLICA, SOURCE):
        (done,) = _audit(member)
        assert done.state == TaskState.SUCCEEDED and "t-1" in done.message
        assert Instance.get_by_id(member).configuration_values == {"max_connections": "150"}
        assert not Instance.get_by_id(member).restart_pending


def test_a_member_that_fails_stops_the_change_and_the_others_keep_their_values(
    replication_set: Effects,
) -> None:
    effects = replication_set
    effects.runner.fail("instance_restart.yml", "postgresql : Start PostgreSQL", "no", REPLICA)
    configure_flow.configure_set(effects.deps, _claim(effects, [REPLICA, SOURCE], "replicas first"))
    assert SOURCE not in {instance for _, instance in _ran(effects)}, _ran(effects)
    task = Task.get_by_id("t-1")
    assert task.state == TaskState.FAILED
    assert task.message.startswith(f"{REPLICA}: The values are written, but the restart failed")
    assert "the members after it keep their values (replicas first)" in task.message
    (failed,) = _audit(REPLICA)
    assert failed.state == TaskState.FAILED
    assert _audit(SOURCE) == []
    assert Instance.get_by_id(SOURCE).configuration_values == {"max_connections": "100"}


def test_a_run_that_lost_its_task_stops_before_the_next_member(replication_set: Effects) -> None:
    effects = replication_set
    claim = _claim(effects, [SOURCE, REPLICA], "source first")

    def canceled_by_a_delete() -> None:
        tasks.end_open(SOURCE, 11.0, TaskState.CANCELED, "Canceled.")
        claim.lease.lose()

    effects.runner.during("instance_configure.yml", canceled_by_a_delete)
    configure_flow.configure_set(effects.deps, claim)
    assert _ran(effects) == [("instance_configure.yml", SOURCE)]
    task = Task.get_by_id("t-1")
    assert task.state == TaskState.CANCELED and task.owner is None
    assert _audit(SOURCE) == [] and _audit(REPLICA) == []
