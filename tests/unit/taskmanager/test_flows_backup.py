"""The backup flows (backup, delete_backup, verify_backup) from their entry points, against
a real SQLite store, with the guests and the task managers' queue stood in for: each ends
its task, its backup and its instance as the happy path and each step's failure say, and a
run that lost its task writes no outcome. (`test_backup_flows` covers a delete canceled at
each moment.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import INSTANCE_PORT, Effects, canceled_meanwhile
from trove_svc.domain import backups, errors, status
from trove_svc.domain.backups import BackupState
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import (
    Backup,
    BackupStrategy,
    Instance,
    Schedule,
    ServiceStatus,
    Task,
)
from trove_svc.taskmanager import backup_flows

INSTANCE, BACKUP = "i-1", "b-1"


def _task(task_id: str = "t-1") -> Task:
    return Task.get_by_id(task_id)


def _backup(backup_id: str = BACKUP) -> Backup:
    return Backup.get_by_id(backup_id)


def _made(state: str = BackupState.NEW, **changes: Any) -> None:
    columns: dict[str, Any] = {
        "id": BACKUP,
        "name": "nightly",
        "project_id": "p1",
        "instance_id": INSTANCE,
        "datastore": "postgresql",
        "datastore_version": "15",
        "state": state,
        "created_at": 1.0,
        "updated_at": 1.0,
        **changes,
    }
    Backup.create(**columns)


def _heard(effects: Effects, seconds_ago: float = 0.0) -> None:
    """The guest's last heartbeat came `seconds_ago`."""
    ServiceStatus.create(
        instance=INSTANCE,
        operating_status=status.HEALTHY,
        last_received_at=effects.settings.clock() - seconds_ago,
    )


def _reported(state: str) -> Any:
    """The guest's answer to start_backup, after its reports (through the conductor) put
    the backup in `state`."""

    def answer(instance_id: str, request: Any) -> Any:
        Backup.update(state=state, label="20260101-000000F").where(Backup.id == BACKUP).execute()
        return {}

    return answer


# backup


def _backing_up(effects: Effects, **changes: Any) -> None:
    rows.instance(status=status.BACKUP, port=INSTANCE_PORT)
    _heard(effects)
    _made(**changes)


def _take(effects: Effects) -> None:
    backup_flows.backup(effects.deps, effects.claim("backup", INSTANCE, {"backup_id": BACKUP}))


def test_backup_made_by_the_guest_completes_and_the_instance_is_active_again(
    effects: Effects,
) -> None:
    _backing_up(effects)
    effects.bus.answer("start_backup", _reported(BackupState.SAVING), INSTANCE)
    _take(effects)
    task = _task()
    assert (task.state, task.owner) == (TaskState.SUCCEEDED, None)
    assert _backup().state == BackupState.COMPLETED
    assert Instance.get_by_id(INSTANCE).status == status.ACTIVE
    assert effects.bus.methods(INSTANCE) == ["start_backup"]


def test_backup_of_an_instance_no_longer_waiting_is_skipped_and_fails_the_backup(
    effects: Effects,
) -> None:
    rows.instance(status=status.ACTIVE)
    _made()
    _take(effects)
    assert _task().state == TaskState.SKIPPED
    assert _backup().state == BackupState.FAILED
    assert _backup().fail_reason == "The instance was no longer waiting for this backup."
    assert effects.bus.asked == []


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_backup_the_guest_cannot_start_fails(effects: Effects, failure: str) -> None:
    _backing_up(effects)
    getattr(effects.bus, failure)("start_backup", INSTANCE)
    _take(effects)
    reason = _backup().fail_reason
    assert reason.startswith("The guest agent could not start it: The guest agent")
    assert _backup().state == BackupState.FAILED
    assert (_task().state, _task().message) == (TaskState.FAILED, reason)
    assert Instance.get_by_id(INSTANCE).status == status.ACTIVE


def test_backup_a_run_before_this_one_started_is_waited_for(effects: Effects) -> None:
    _backing_up(effects)

    def already_running(instance_id: str, request: Any) -> Any:
        _reported(BackupState.SAVING)(instance_id, request)
        raise errors.Conflict("A backup runs already.")

    effects.bus.answer("start_backup", already_running, INSTANCE)
    _take(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert _backup().state == BackupState.COMPLETED


def test_backup_taken_over_once_the_guest_made_it_is_not_started_again(
    effects: Effects,
) -> None:
    _backing_up(effects, state=BackupState.SAVING)
    _take(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert _backup().state == BackupState.COMPLETED
    assert effects.bus.asked == []


def test_backup_whose_guest_falls_silent_fails(effects: Effects) -> None:
    _backing_up(effects)
    ServiceStatus.update(last_received_at=0.0).execute()
    _take(effects)
    reason = "The guest agent fell silent while the backup ran."
    assert (_backup().state, _backup().fail_reason) == (BackupState.FAILED, reason)
    assert (_task().state, _task().message) == (TaskState.FAILED, reason)
    assert Instance.get_by_id(INSTANCE).status == status.ACTIVE


def test_backup_that_takes_too_long_fails(effects: Effects) -> None:
    _backing_up(effects)

    def heartbeat_goes_on(instance_id: str, request: Any) -> Any:
        # The guest stays heard: only the time limit ends the wait.
        ServiceStatus.update(last_received_at=1e12).execute()
        return {}

    effects.bus.answer("start_backup", heartbeat_goes_on, INSTANCE)
    _take(effects)
    reason = "The backup did not end within 60 s (TROVE_SVC_LIMIT_BACKUP)."
    assert (_backup().state, _backup().fail_reason) == (BackupState.FAILED, reason)
    assert (_task().state, _task().message) == (TaskState.FAILED, reason)


def test_backup_the_guest_reports_failed_fails_the_task(effects: Effects) -> None:
    _backing_up(effects)

    def failed(instance_id: str, request: Any) -> Any:
        Backup.update(state=BackupState.FAILED, fail_reason="disk full").execute()
        return {}

    effects.bus.answer("start_backup", failed, INSTANCE)
    _take(effects)
    assert (_task().state, _task().message) == (TaskState.FAILED, "disk full")
    assert Instance.get_by_id(INSTANCE).status == status.ACTIVE


def test_backup_that_cannot_be_stored_in_its_bucket_fails(effects: Effects) -> None:
    _backing_up(effects)
    BackupStrategy.create(
        id="st-1", project_id="p1", instance_id=None, backend="s3", container="c", created_at=0
    )
    effects.bus.answer("start_backup", _reported(BackupState.SAVING), INSTANCE)
    _take(effects)
    reason = "Not stored in S3: No S3 endpoint is set (TROVE_SVC_S3_ENDPOINT)."
    assert (_backup().state, _backup().fail_reason) == (BackupState.FAILED, reason)
    assert (_task().state, _task().message) == (TaskState.FAILED, reason)


def test_backup_canceled_while_it_ran_writes_no_outcome(effects: Effects) -> None:
    _backing_up(effects)
    claim = effects.claim("backup", INSTANCE, {"backup_id": BACKUP})

    def canceled(instance_id: str, request: Any) -> Any:
        canceled_meanwhile(claim)
        return {}

    effects.bus.answer("start_backup", canceled, INSTANCE)
    backup_flows.backup(effects.deps, claim)
    task = _task()
    assert (task.state, task.message) == (
        TaskState.CANCELED,
        "Canceled: the instance is being deleted.",
    )
    assert _backup().state == BackupState.NEW  # the instance's delete settles it
    assert Instance.get_by_id(INSTANCE).status == status.BACKUP


def test_scheduled_backup_prunes_what_its_schedule_no_longer_keeps_and_asks_a_check(
    effects: Effects,
) -> None:
    Schedule.create(
        id="sc-1",
        instance_id=INSTANCE,
        project_id="p1",
        name="nightly",
        cron="0 3 * * *",
        retention_count=1,
        verify=True,
        next_run_at=0,
        created_at=0,
    )
    _backing_up(effects, schedule_id="sc-1", created_at=2.0)
    _made(BackupState.COMPLETED, id="b-old", schedule_id="sc-1", label="old")
    effects.bus.answer("start_backup", _reported(BackupState.SAVING), INSTANCE)
    _take(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert _backup("b-old").state == BackupState.DELETING
    asked = {task.action: task for task in Task.select().where(Task.id != "t-1")}
    assert set(asked) == {"delete_backup", "verify_backup"}
    assert asked["delete_backup"].args == {"backup_id": "b-old"}
    assert asked["verify_backup"].args == {"backup_id": BACKUP}
    assert {args["task_id"] for _, args in effects.bus.casts} == {t.id for t in asked.values()}


# delete_backup


def _remove(effects: Effects) -> None:
    claim = effects.claim("delete_backup", INSTANCE, {"backup_id": BACKUP})
    backup_flows.delete_backup(effects.deps, claim)


def test_delete_backup_has_the_guest_remove_its_files_and_the_backup_goes(
    effects: Effects,
) -> None:
    rows.instance()
    _made(BackupState.DELETING, label="20260101-000000F")
    _remove(effects)
    assert (_task().state, _task().message) == (TaskState.SUCCEEDED, f"backup nightly ({BACKUP})")
    assert Backup.get_or_none(Backup.id == BACKUP) is None
    assert effects.bus.asked == [("remove_backup", INSTANCE)]


def test_delete_backup_of_a_backup_already_gone_is_skipped(effects: Effects) -> None:
    rows.instance()
    _remove(effects)
    assert _task().state == TaskState.SKIPPED
    assert effects.bus.asked == []


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_delete_backup_whose_guest_fails_keeps_the_backup_deletable(
    effects: Effects, failure: str
) -> None:
    rows.instance()
    _made(BackupState.DELETING, label="20260101-000000F")
    getattr(effects.bus, failure)("remove_backup", INSTANCE)
    _remove(effects)
    assert _task().state == TaskState.FAILED
    assert _task().message.startswith(
        "Its files could not be removed: its instance's guest: The guest agent"
    )
    assert _backup().state == BackupState.COMPLETED


def test_delete_backup_of_a_deleted_instance_s_last_backup_removes_its_repository(
    effects: Effects,
) -> None:
    _made(BackupState.DELETING, label="20260101-000000F")
    repository = backups.repository(effects.settings.backups_dir, INSTANCE)
    repository.mkdir(parents=True)
    (repository / "backup.info").write_text("x")
    _remove(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert not repository.exists()
    assert Backup.get_or_none(Backup.id == BACKUP) is None


def test_delete_backup_whose_repository_is_a_link_keeps_the_backup(
    effects: Effects, tmp_path: Path
) -> None:
    _made(BackupState.DELETING, label="20260101-000000F")
    repository = backups.repository(effects.settings.backups_dir, INSTANCE)
    repository.parent.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    repository.symlink_to(tmp_path / "elsewhere")
    _remove(effects)
    assert (_task().state, _task().message) == (
        TaskState.FAILED,
        f"Its files could not be removed: the repository of instance {INSTANCE} is a link",
    )
    assert _backup().state == BackupState.COMPLETED
    assert (tmp_path / "elsewhere").is_dir()


def test_delete_backup_kept_in_a_bucket_that_cannot_be_reached_keeps_it(
    effects: Effects,
) -> None:
    rows.instance()
    in_bucket = {"s3": {"bucket": "c", "prefix": ""}}
    _made(BackupState.DELETING, label="20260101-000000F", details=in_bucket)
    _remove(effects)
    assert _task().state == TaskState.FAILED
    assert "No S3 endpoint is set" in _task().message
    assert _backup().state == BackupState.COMPLETED


# verify_backup


@pytest.fixture
def check_asked(effects: Effects) -> str:
    """A completed backup of an instance since deleted, whose check was asked for."""
    _made(BackupState.COMPLETED, label="20260101-000000F", instance_id="gone")
    return BACKUP


def _builds(effects: Effects, health: str = status.HEALTHY, fault: str | None = None) -> None:
    """The task managers build each instance cast to them: ACTIVE and `health` (or, with
    a `fault`, ERROR)."""

    def build(args: dict[str, Any]) -> None:
        if Task.get_by_id(args["task_id"]).action != "create":
            return
        built = Instance.get_by_id(args["instance_id"])
        Instance.update(
            status=status.ERROR if fault else status.ACTIVE, provisioned=True, fault_message=fault
        ).where(Instance.id == built.id).execute()
        ServiceStatus.update(operating_status=health).where(
            ServiceStatus.instance == built.id
        ).execute()

    effects.bus.on_cast = build


def _verify(effects: Effects) -> None:
    claim = effects.claim("verify_backup", "gone", {"backup_id": BACKUP})
    backup_flows.verify_backup(effects.deps, claim)


def _throwaways() -> list[Instance]:
    return list(Instance.select().where(Instance.name.startswith("check-")))


def test_verify_backup_restores_it_counts_its_rows_and_removes_the_throwaway(
    effects: Effects, check_asked: str
) -> None:
    _builds(effects)
    _verify(effects)
    assert (_task().state, _task().message) == (TaskState.SUCCEEDED, "passed: 1 tables, 3 rows")
    checked = _backup()
    assert checked.verify_outcome == "passed: 1 tables, 3 rows"
    assert checked.details["row_counts"] == {"public.t": 3}
    (throwaway,) = _throwaways()
    assert throwaway.status == status.SHUTDOWN  # its delete was asked
    actions = [Task.get_by_id(args["task_id"]).action for _, args in effects.bus.casts]
    assert actions == ["create", "delete"]


def test_verify_backup_of_a_backup_gone_is_skipped(effects: Effects) -> None:
    _verify(effects)
    assert _task().state == TaskState.SKIPPED
    assert effects.bus.casts == []


def test_verify_backup_that_cannot_be_restored_is_not_checked(effects: Effects) -> None:
    _made(BackupState.FAILED, instance_id="gone")
    _verify(effects)
    assert _task().state == TaskState.FAILED
    assert _backup().verify_outcome == f"not checked: {_task().message}"
    assert effects.bus.casts == []


def test_verify_backup_whose_restore_fails_fails(effects: Effects, check_asked: str) -> None:
    _builds(effects, fault="could not start server")
    _verify(effects)
    outcome = "failed: could not start server"
    assert (_task().state, _task().message) == (TaskState.FAILED, outcome)
    assert _backup().verify_outcome == outcome


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_verify_backup_whose_restored_datastore_does_not_answer_fails(
    effects: Effects, check_asked: str, failure: str
) -> None:
    _builds(effects)
    getattr(effects.bus, failure)("table_row_counts")
    _verify(effects)
    assert _task().state == TaskState.FAILED
    assert _task().message.startswith("failed: the restored datastore did not answer (")
    assert _backup().verify_outcome == _task().message
    assert _throwaways()[0].status == status.SHUTDOWN


def test_verify_backup_whose_restore_never_comes_up_fails(
    effects: Effects, check_asked: str
) -> None:
    _builds(effects, health="SHUTDOWN")
    _verify(effects)
    outcome = "failed: the restored instance did not come up in time"
    assert (_task().state, _task().message) == (TaskState.FAILED, outcome)
    assert _throwaways()[0].status == status.SHUTDOWN


def test_verify_backup_canceled_while_it_waited_writes_no_outcome(
    effects: Effects, check_asked: str
) -> None:
    claim = effects.claim("verify_backup", "gone", {"backup_id": BACKUP})
    effects.bus.on_cast = lambda args: canceled_meanwhile(claim, "Canceled.")
    backup_flows.verify_backup(effects.deps, claim)
    task = _task()
    assert (task.state, task.owner, task.message) == (TaskState.CANCELED, None, "Canceled.")
