"""A switchover checks, before each step, that its task is still its own (against a real
SQLite store, with the playbooks and the guests stood in for): ended after the source was
fenced, it has the source take writes again; taken over by another task manager, it leaves
the source to that one; never does it promote the replica."""

from __future__ import annotations

from collections.abc import Callable

from tests import rows
from tests.unit.taskmanager.fakes import INSTANCE_PORT, SOURCE_PORT, Effects
from trove_svc.domain import status, tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Instance, Task
from trove_svc.taskmanager import replication_flows

SOURCE, REPLICA = "s-1", "r-1"


def _switchover(effects: Effects, after_fence: Callable[[], None]) -> None:
    """A switchover from the source to its replica; `after_fence` runs while the source
    is fenced. Every guest answers: caught up at position 5, promoted at 6."""
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    rows.instance(id=REPLICA, port=INSTANCE_PORT, replica_of_id=SOURCE, status=status.PROMOTE)
    effects.runner.during("instance_replication.yml", after_fence)
    replication_flows.promote(effects.deps, effects.claim("promote", REPLICA))


def _ran(effects: Effects) -> list[tuple[str, str]]:
    return [(run.playbook, run.instance_id) for run in effects.runner.ran]


def test_ended_after_the_fence_the_source_takes_writes_again(effects: Effects) -> None:
    def deleted_meanwhile() -> None:
        tasks.end_open(REPLICA, 11.0, TaskState.CANCELED, "Canceled: deleted.")

    _switchover(effects, deleted_meanwhile)
    assert _ran(effects) == [("instance_replication.yml", SOURCE)]  # the fence, nothing after
    assert ("promote", REPLICA) not in effects.bus.asked
    assert effects.bus.asked[-1] == ("promote", SOURCE)
    assert Instance.get_by_id(REPLICA).replica_of_id == SOURCE
    assert Task.get_by_id("t-1").owner is None


def test_taken_over_after_the_fence_the_source_is_left_to_the_new_owner(
    effects: Effects,
) -> None:
    def taken_over() -> None:
        Task.update(owner="tm-2").where(Task.id == "t-1").execute()

    _switchover(effects, taken_over)
    assert _ran(effects) == [("instance_replication.yml", SOURCE)]
    assert effects.bus.methods() == ["replication_state"]
    task = Task.get_by_id("t-1")
    assert task.owner == "tm-2" and task.state == TaskState.RUNNING
    assert Instance.get_by_id(REPLICA).replica_of_id == SOURCE
