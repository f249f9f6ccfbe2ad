"""A backup's delete that its instance's delete cancels: whatever moment the cancel lands,
the backup ends either gone (its files went) or still there and deletable, never DELETING;
against a real (SQLite) store, with the guest stood in for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests import rows
from trove_svc import backups, catalog, errors, tasks
from trove_svc.bus.messages import RunTask
from trove_svc.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import Backup, Task
from trove_svc.taskmanager import backup_flows
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.leases import Lease
from trove_svc.tasks import TaskState

OWNER = "tm-1"
CANCELED = "Canceled: the instance is being deleted."


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults([catalog.HostDatastore("mariadb", "10.11", "/usr/sbin")])
    rows.instance(status="SHUTDOWN")
    Backup.create(
        id="b-1",
        name="b",
        project_id="p1",
        instance_id="i-1",
        datastore="mariadb",
        datastore_version="10.11",
        state="COMPLETED",
        label="lsn:1",
        created_at=1.0,
        updated_at=1.0,
    )
    yield Settings(state_dir=tmp_path / "state", clock=lambda: 10.0)
    database.close()


class Guest:
    """The instance's guest: `answer` runs while the guest removes the backup."""

    def __init__(self, answer: Callable[[], Any]) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def call_guest(self, instance_id: str, request: Any, context: Any, timeout: float) -> Any:
        self.asked.append(request.method)
        return self.answer()


class Casts:
    """The task manager's queue: what was cast to it."""

    def __init__(self) -> None:
        self.sent: list[RunTask] = []

    def run_task(self, message: RunTask, context: Any) -> None:
        self.sent.append(message)


def _delete_asked(settings: Settings) -> Claim:
    """DELETE of the backup: DELETING, and its task claimed by this task manager."""
    casts = Casts()
    service = backups.BackupService(settings, cast(Any, casts), cast(Any, None))
    service.remove("p1", Backup.get_by_id("b-1"), "alice", "req-1")
    assert Backup.get_by_id("b-1").state == "DELETING"
    task_id = casts.sent[0].task_id
    assert tasks.claim(task_id, OWNER, 1.0, 30.0)
    return Claim(Task.get_by_id(task_id), OWNER, Lease(task_id, 31.0, 2.0, lambda: 1.0))


def _cancel(claim: Claim) -> None:
    """The instance's delete cancels its open tasks; the run learns it at its renewal."""
    tasks.end_open("i-1", 5.0, TaskState.CANCELED, CANCELED)
    claim.lease.lose()


def _run(settings: Settings, claim: Claim, guest: Guest) -> None:
    deps = FlowDeps(
        settings,
        cast(Any, None),
        cast(Any, guest),
        cast(Any, None),
        cast(Any, None),
        cast(Any, None),
    )
    backup_flows.delete_backup(deps, claim)


def test_a_delete_canceled_before_it_ran_leaves_the_backup_there_and_deletable(
    settings: Settings,
) -> None:
    claim = _delete_asked(settings)
    _cancel(claim)
    backups.settle_left_behind("i-1", 6.0, backups.INSTANCE_DELETED)
    assert Backup.get_by_id("b-1").state == "COMPLETED"
    assert Task.get_by_id(claim.task.id).state == TaskState.CANCELED
    _delete_asked(settings)  # deletable again


def test_a_delete_canceled_while_the_guest_removed_the_files_takes_the_backup(
    settings: Settings,
) -> None:
    claim = _delete_asked(settings)
    guest = Guest(lambda: _cancel(claim))
    _run(settings, claim, guest)
    backups.settle_left_behind("i-1", 6.0, backups.INSTANCE_DELETED)
    assert guest.asked == ["remove_backup"]
    assert Backup.get_or_none(Backup.id == "b-1") is None
    task = Task.get_by_id(claim.task.id)
    assert (task.state, task.message, task.owner) == (TaskState.CANCELED, CANCELED, None)


def test_a_delete_canceled_while_the_guest_failed_leaves_the_backup_there(
    settings: Settings,
) -> None:
    claim = _delete_asked(settings)

    def canceled_then_failed() -> None:
        _cancel(claim)
        raise errors.ServiceUnavailable("The guest agent did not answer remove_backup.")

    _run(settings, claim, Guest(canceled_then_failed))
    backups.settle_left_behind("i-1", 6.0, backups.INSTANCE_DELETED)
    assert Backup.get_by_id("b-1").state == "COMPLETED"
    assert Task.get_by_id(claim.task.id).state == TaskState.CANCELED


def test_a_failed_delete_does_not_bring_back_a_backup_settled_meanwhile(
    settings: Settings,
) -> None:
    claim = _delete_asked(settings)

    def settled_then_failed() -> None:
        Backup.update(state="FAILED").where(Backup.id == "b-1").execute()
        raise errors.ServiceUnavailable("The guest agent did not answer remove_backup.")

    _run(settings, claim, Guest(settled_then_failed))
    assert Backup.get_by_id("b-1").state == "FAILED"
    assert Task.get_by_id(claim.task.id).state == TaskState.FAILED
