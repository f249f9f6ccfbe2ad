"""What every flow the task manager runs does, parametrised over its registry of flows, so
a new flow cannot slip past: a task whose instance (or backup) is gone ends without a run,
and a task another party ended before its flow ran keeps that party's outcome, with no
fault on its instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import SOURCE_PORT, Effects, canceled_meanwhile
from trove_svc.domain import status
from trove_svc.domain.backups import BackupState
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Backup, Instance, Task
from trove_svc.taskmanager.service import ALL_FLOWS

SOURCE, REPLICA = "s-1", "r-1"
# The status an action's instance waits in while its task runs (the API sets it), and
# which member of a source and its replica the task is on.
WAITING = {
    "create": (status.BUILD, SOURCE),
    "delete": (status.SHUTDOWN, SOURCE),
    "restart": (status.REBOOT, SOURCE),
    "resize": (status.RESIZE, SOURCE),
    "update_access": (status.REBOOT, SOURCE),
    "promote": (status.PROMOTE, REPLICA),
    "eject": (status.EJECT, SOURCE),
    "detach": (status.DETACH, REPLICA),
    "rejoin": (status.REJOIN, REPLICA),
    "configure": (status.ACTIVE, SOURCE),
    "configure_set": (status.ACTIVE, SOURCE),
    "backup": (status.BACKUP, SOURCE),
    "delete_backup": (status.ACTIVE, SOURCE),
    "verify_backup": (status.ACTIVE, SOURCE),
    "warm": (status.BUILD, SOURCE),
}
# The state of the backup an action works on.
BACKUP_STATE = {
    "backup": BackupState.NEW,
    "delete_backup": BackupState.DELETING,
    "verify_backup": BackupState.COMPLETED,
}
# Every argument any flow reads, so one task fits each.
ARGS = {
    "databases": [],
    "flavor_id": "2",
    "access": {"is_public": True},
    "backup_id": "b-1",
    "members": [REPLICA, SOURCE],
    "order": "replicas first",
}
# A set's change with no member left to change has nothing to skip: it is done.
ENDS_WHEN_GONE = {"configure_set": TaskState.SUCCEEDED}
CANCELED = "Canceled: the instance is being deleted."


def test_every_flow_the_task_manager_runs_is_covered_here() -> None:
    assert set(ALL_FLOWS) == set(WAITING)


@pytest.mark.parametrize("action", sorted(WAITING))
def test_a_flow_whose_instance_is_gone_ends_its_task_without_a_run(
    effects: Effects, action: str
) -> None:
    ALL_FLOWS[action](effects.deps, effects.claim(action, "i-gone", ARGS))
    task = Task.get_by_id("t-1")
    assert task.state == ENDS_WHEN_GONE.get(action, TaskState.SKIPPED), task.message
    assert task.owner is None
    assert effects.runner.ran == [] and effects.bus.asked == [] and effects.bus.casts == []


def _waiting(effects: Effects, action: str) -> str:
    """A source and its replica, the task's one waiting for `action`: its id."""
    waiting, task_on = WAITING[action]
    for port, instance_id in enumerate((SOURCE, REPLICA), start=SOURCE_PORT):
        _, sealed = effects.keys.new_instance_key(instance_id)
        rows.instance(
            id=instance_id,
            port=port,
            guest_key=sealed,
            replica_of_id=SOURCE if instance_id == REPLICA else None,
            status=waiting if instance_id == task_on else status.ACTIVE,
            provisioned=action != "create" or instance_id != task_on,
        )
    if action in BACKUP_STATE:
        Backup.create(
            id="b-1",
            name="b",
            project_id="p1",
            instance_id=SOURCE,
            datastore="postgresql",
            datastore_version="15",
            state=BACKUP_STATE[action],
            label="20260101-000000F",
            created_at=1.0,
            updated_at=1.0,
        )
    return task_on


@pytest.mark.parametrize("action", sorted(WAITING))
def test_a_flow_whose_task_was_canceled_before_it_ran_keeps_the_cancel(
    effects: Effects,
    action: str,
    postgresql_described: list[dict[str, Any]],
    keep_description: Callable[[str, list[dict[str, Any]]], None],
) -> None:
    keep_description("postgresql", postgresql_described)  # the configuration flows read it
    instance_id = _waiting(effects, action)
    claim = effects.claim(action, instance_id, ARGS)
    canceled_meanwhile(claim)
    ALL_FLOWS[action](effects.deps, claim)
    task = Task.get_by_id("t-1")
    assert (task.state, task.message, task.failed_step) == (TaskState.CANCELED, CANCELED, None)
    instance = Instance.get_by_id(instance_id)
    assert (instance.status, instance.fault_message) == (WAITING[action][0], None)
