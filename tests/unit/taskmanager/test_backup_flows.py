"""A backup's delete that its instance's delete cancels: whatever moment the cancel lands,
the backup ends either gone (its files went) or still there and deletable, never DELETING;
and a backup its tenant deleted while its tool keeps it, until it is freed. Against a real
(SQLite) store, with the guest stood in for."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import Effects
from trove_svc.bus.messages import TaskManagerClient
from trove_svc.domain import backups, errors, quotas, restores, tasks
from trove_svc.domain.instances import InstanceService
from trove_svc.domain.tasks import TaskState
from trove_svc.security.caller import Caller
from trove_svc.store.models import Backup, Task
from trove_svc.taskmanager import backup_flows
from trove_svc.taskmanager.deps import Claim
from trove_wire.envelope import Context

CANCELED = "Canceled: the instance is being deleted."


@pytest.fixture
def kept(effects: Effects) -> Effects:
    """A completed backup of an instance being deleted (its guest still answers)."""
    rows.instance(status="SHUTDOWN")
    rows.backup()
    return effects


def _delete_asked(effects: Effects) -> Claim:
    """DELETE of the backup: DELETING, and its task claimed by this task manager."""
    casts = TaskManagerClient(effects.deps.bus)
    instances = InstanceService(effects.settings, casts, effects.keys)
    service = backups.BackupService(effects.settings, casts, instances)
    effects.bus.casts.clear()
    service.remove(
        "p1", Backup.get_by_id("b-1"), Context(project="p1", user="alice", request_id="req-1")
    )
    assert Backup.get_by_id("b-1").state == "DELETING"
    ((_, cast),) = effects.bus.casts
    return effects.take(cast["task_id"])


def _cancel(claim: Claim) -> None:
    """The instance's delete cancels its open tasks; the run learns it at its renewal."""
    tasks.end_open("i-1", 5.0, TaskState.CANCELED, CANCELED)
    claim.lease.lose()


def _run(effects: Effects, claim: Claim, removing: Callable[[], Any]) -> None:
    """The delete's flow; `removing` runs while the guest removes the backup's files."""
    effects.bus.answer("remove_backup", lambda _instance, _request: removing())
    backup_flows.delete_backup(effects.deps, claim)


def test_a_delete_canceled_before_it_ran_leaves_the_backup_there_and_deletable(
    kept: Effects,
) -> None:
    claim = _delete_asked(kept)
    _cancel(claim)
    backups.settle_left_behind("i-1", 6.0, backups.INSTANCE_DELETED)
    assert Backup.get_by_id("b-1").state == "COMPLETED"
    assert Task.get_by_id(claim.task.id).state == TaskState.CANCELED
    _delete_asked(kept)  # deletable again


def test_a_delete_canceled_while_the_guest_removed_the_files_takes_the_backup(
    kept: Effects,
) -> None:
    claim = _delete_asked(kept)
    _run(kept, claim, lambda: _cancel(claim))
    backups.settle_left_behind("i-1", 6.0, backups.INSTANCE_DELETED)
    assert kept.bus.methods() == ["remove_backup"]
    assert Backup.get_or_none(Backup.id == "b-1") is None
    task = Task.get_by_id(claim.task.id)
    assert (task.state, task.message, task.owner) == (TaskState.CANCELED, CANCELED, None)


def test_a_delete_canceled_while_the_guest_failed_leaves_the_backup_there(
    kept: Effects,
) -> None:
    claim = _delete_asked(kept)

    def canceled_then_failed() -> None:
        _cancel(claim)
        raise errors.ServiceUnavailable("The guest agent did not answer remove_backup.")

    _run(kept, claim, canceled_then_failed)
    backups.settle_left_behind("i-1", 6.0, backups.INSTANCE_DELETED)
    assert Backup.get_by_id("b-1").state == "COMPLETED"
    assert Task.get_by_id(claim.task.id).state == TaskState.CANCELED


def test_a_failed_delete_does_not_bring_back_a_backup_settled_meanwhile(
    kept: Effects,
) -> None:
    claim = _delete_asked(kept)

    def settled_then_failed() -> None:
        Backup.update(state="FAILED").where(Backup.id == "b-1").execute()
        raise errors.ServiceUnavailable("The guest agent did not answer remove_backup.")

    _run(kept, claim, settled_then_failed)
    assert Backup.get_by_id("b-1").state == "FAILED"
    assert Task.get_by_id(claim.task.id).state == TaskState.FAILED


def _service(effects: Effects) -> backups.BackupService:
    casts = TaskManagerClient(effects.deps.bus)
    return backups.BackupService(
        effects.settings, casts, InstanceService(effects.settings, casts, effects.keys)
    )


def test_the_newest_full_backup_its_tenant_deleted_is_hidden_then_removed_after_a_newer_full(
    effects: Effects, caplog: pytest.LogCaptureFixture
) -> None:
    """Its data stays while the live instance's archived logs build on it; the tenant sees
    it gone at once; a newer full backup frees it, and its delete task removes its files."""
    rows.instance()
    rows.backup()
    service = _service(effects)
    caller = Caller("p1", Context(project="p1", user="alice"))
    effects.bus.casts.clear()
    with caplog.at_level(logging.INFO, logger="trove_svc.domain.backups"):
        service.delete(caller, "b-1")
    assert effects.bus.casts == []  # nothing removed: the tool keeps it
    assert Backup.get_by_id("b-1").deleted_by_tenant_at is not None
    assert "until a newer full backup completes" in caplog.text
    with pytest.raises(errors.NotFound):
        service.get(caller, "b-1")
    assert service.page(caller, 10, None) == ([], None)
    assert quotas.usage("p1").backups == 0
    with pytest.raises(errors.NotFound):
        restores.restore_source(effects.settings, caller, {"backupRef": "b-1"})
    # An "incremental" backup now finds no base its tenant sees: it is full.
    assert backups.newest_completed("i-1") is None

    backup_flows.remove_released(effects.deps, "i-1")
    assert effects.bus.casts == []  # still the newest full backup
    rows.backup(id="b-2", name="newer", label="20260102-000000F", created_at=2.0, updated_at=2.0)
    backup_flows.remove_released(effects.deps, "i-1")
    ((_, cast),) = effects.bus.casts
    task = Task.get_by_id(cast["task_id"])
    assert (task.action, task.args["backup_id"], task.requested_by) == (
        "delete_backup",
        "b-1",
        "trove-svc",
    )
    _run(effects, effects.take(cast["task_id"]), lambda: {})
    assert effects.bus.methods() == ["remove_backup"]
    assert Backup.get_or_none(Backup.id == "b-1") is None
    assert Backup.get_by_id("b-2").deleted_by_tenant_at is None
