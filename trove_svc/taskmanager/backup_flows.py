"""Flows for backups: take one (through the instance's guest), delete one, and check one
by restoring it into a throwaway instance.

A backup runs in the guest, which reports on it through the conductor; its flow waits for
the outcome (or gives up after `limit_backup`, or once the guest falls silent), then puts
the instance back to ACTIVE. A scheduled backup then prunes what its schedule no longer
keeps, and starts its check if the schedule asks for one.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trove_svc.bus.messages import TaskManagerClient
from trove_svc.domain import backups, errors, schedules, status, tasks
from trove_svc.domain.backups import (
    BACKUP,
    MAKING,
    RUNNING,
    BackupService,
    BackupState,
    others_in_repository,
)
from trove_svc.domain.instances import InstanceService
from trove_svc.security.caller import Caller
from trove_svc.store.models import Backup, Instance, Schedule, ServiceStatus
from trove_svc.taskmanager import backup_store, object_store, repository_copies
from trove_svc.taskmanager.deps import Claim, FlowDeps, guest_context, task_context
from trove_svc.taskmanager.engine import Flow, FlowState, Lost, Outcome, Skip, Step, StepFailed
from trove_svc.taskmanager.engine import run as run_flow
from trove_wire import contract
from trove_wire.envelope import Context

LOG = logging.getLogger(__name__)
POLL = 1.0


def _fail(backup: Backup, reason: str, now: float) -> None:
    Backup.update(state=BackupState.FAILED, fail_reason=reason[:1000], updated_at=now).where(
        (Backup.id == backup.id) & Backup.state.in_(RUNNING)
    ).execute()


def _guest_silent(deps: FlowDeps, instance_id: str, now: float) -> bool:
    heard = (
        ServiceStatus.select(ServiceStatus.last_received_at)
        .where(ServiceStatus.instance == instance_id)
        .scalar()
    )
    return heard is not None and heard < now - deps.settings.heartbeat_expiry


def _wait_for_outcome(deps: FlowDeps, claim: Claim, backup: Backup) -> Backup | None:
    """The backup once its guest made it (SAVING) or it ended (the flow fails it if its
    guest goes silent or it takes too long); None if the task was taken from this run."""
    deadline = time.monotonic() + deps.settings.limit_backup
    while claim.still_ours():
        current = Backup.get_by_id(backup.id)
        if current.state not in MAKING:
            return current
        now = deps.settings.clock()
        if _guest_silent(deps, backup.instance_id, now):
            _fail(backup, "The guest agent fell silent while the backup ran.", now)
        elif time.monotonic() > deadline:
            limit = deps.settings.limit_backup
            _fail(
                backup, f"The backup did not end within {limit:g} s (TROVE_SVC_LIMIT_BACKUP).", now
            )
        time.sleep(POLL)
    return None


@dataclass(kw_only=True)
class BackingUp(FlowState):
    made: Backup
    instance: Instance
    # The backup once it ended (or was made, and then stored away).
    ended: Backup | None = None


def _waited_for(deps: FlowDeps, claim: Claim) -> BackingUp:
    made = Backup.get_or_none(Backup.id == claim.task.args.get("backup_id"))
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if made is None or instance is None or instance.status != BACKUP:
        if made is not None:
            _fail(
                made, "The instance was no longer waiting for this backup.", deps.settings.clock()
            )
        raise Skip("the instance is no longer waiting for it")
    return BackingUp(deps=deps, claim=claim, made=made, instance=instance)


def _start_in_guest(state: BackingUp) -> None:
    """The guest starts a NEW backup (taken over from a run that died, the backup may be
    further on: the flow goes on from there)."""
    deps, made = state.deps, state.made
    if made.state != BackupState.NEW:
        return
    parent = Backup.get_or_none(Backup.id == made.parent_id) if made.parent_id else None
    request = contract.StartBackup(made.id, made.kind, parent.label if parent else None)
    try:
        deps.bus.call_guest(
            state.instance.id, request, task_context(state.claim.task), deps.settings.call_timeout
        )
    except errors.Conflict:
        LOG.info("backup %s already runs (a run before this one started it)", made.id)
    except errors.TroveSvcError as exc:
        _fail(made, f"The guest agent could not start it: {exc.message}", deps.settings.clock())


def _wait_for_guest(state: BackingUp) -> None:
    made = state.made
    ended = _wait_for_outcome(state.deps, state.claim, made) if made.state in MAKING else made
    if ended is None:
        raise Lost
    state.ended = ended


def _collect(state: BackingUp) -> None:
    """A backup made on another host is copied into the control plane's repository (which
    keeps it, and which S3 copies, checks and restores read); one that cannot be is FAILED."""
    made = state.ended or state.made
    if made.state not in (BackupState.SAVING, BackupState.COMPLETED):
        return
    try:
        repository_copies.collect(state.deps, state.claim, state.instance)
    except repository_copies.NotCollected as exc:
        Backup.update(
            state=BackupState.FAILED, fail_reason=str(exc), updated_at=state.deps.settings.clock()
        ).where(
            (Backup.id == made.id) & Backup.state.in_((BackupState.SAVING, BackupState.COMPLETED))
        ).execute()
    state.ended = Backup.get_by_id(made.id)


def _store(state: BackingUp) -> None:
    ended = state.ended or state.made
    if ended.state in (BackupState.SAVING, BackupState.COMPLETED):
        ended = state.ended = _store_away(state.deps, ended)
    LOG.info("backup %s of %s: %s", ended.id, state.instance.id, ended.state)
    if ended.state != BackupState.COMPLETED:
        raise StepFailed(ended.fail_reason or f"The backup ended {ended.state}.")


def _back_to_active(state: BackingUp, ok: bool) -> None:
    status.move(state.instance.id, BACKUP, status.ACTIVE, state.deps.settings.clock())


def _after_success(state: BackingUp) -> None:
    # A newer full backup frees the one its tenant deleted (the tool's base until now).
    remove_released(state.deps, state.instance.id)
    if state.ended is not None and state.ended.schedule_id:
        _after_scheduled(state.deps, state.ended)


def remove_released(deps: FlowDeps, instance_id: str) -> None:
    """Remove the instance's backups its tenant deleted that nothing keeps any more."""
    BackupService(
        deps.settings, TaskManagerClient(deps.bus), instance_service(deps)
    ).remove_released(instance_id)


BACKUP_FLOW: Flow[BackingUp] = Flow(
    begin=_waited_for,
    steps=(
        Step("starting it in the guest", _start_in_guest),
        Step("waiting for the guest to make it", _wait_for_guest),
        Step("copying it from the instance's host", _collect),
        Step("storing it away", _store),
    ),
    ended=_back_to_active,
    after=_after_success,
)


def backup(deps: FlowDeps, claim: Claim) -> None:
    run_flow(BACKUP_FLOW, deps, claim)


def _store_away(deps: FlowDeps, made: Backup) -> Backup:
    """Copy a made backup out to its strategy's bucket, if it has one, and call it
    COMPLETED; a backup that cannot be stored where it was asked to be is FAILED."""
    try:
        bucket = object_store.bucket_for(deps.settings, made)
        if bucket is not None:
            repository = backups.repository(deps.settings.backups_dir, made.instance_id)
            object_store.upload(bucket, repository, made)
    except (errors.TroveSvcError, OSError, Exception) as exc:
        LOG.exception("backup %s could not be stored in S3", made.id)
        reason = exc.message if isinstance(exc, errors.TroveSvcError) else type(exc).__name__
        Backup.update(state=BackupState.FAILED, fail_reason=f"Not stored in S3: {reason}").where(
            (Backup.id == made.id) & (Backup.state == BackupState.SAVING)
        ).execute()
        return Backup.get_by_id(made.id)
    details = dict(made.details)
    if bucket is not None:
        details["s3"] = {"bucket": bucket.name, "prefix": bucket.prefix}
    Backup.update(
        state=BackupState.COMPLETED, details=details, updated_at=deps.settings.clock()
    ).where(
        (Backup.id == made.id) & Backup.state.in_((BackupState.SAVING, BackupState.COMPLETED))
    ).execute()
    return Backup.get_by_id(made.id)


def _after_scheduled(deps: FlowDeps, made: Backup) -> None:
    """Prune what the schedule no longer keeps (each a delete task, in the audit trail),
    then start the restore check if the schedule asks for one."""
    schedule = Schedule.get_or_none(Schedule.id == made.schedule_id)
    if schedule is None:
        return
    service = BackupService(deps.settings, TaskManagerClient(deps.bus), instance_service(deps))
    for old in schedules.beyond_retention(schedule, deps.settings.clock()):
        try:
            pruner = Context(project=schedule.project_id, user=f"schedule {schedule.name}")
            service.remove(schedule.project_id, old, pruner)
        except errors.TroveSvcError as exc:
            LOG.warning("could not prune backup %s: %s", old.id, exc.message)
    if schedule.verify:
        _cast(deps, made.instance_id, schedule.project_id, "verify_backup", {"backup_id": made.id})


def instance_service(deps: FlowDeps) -> InstanceService:
    return InstanceService(deps.settings, TaskManagerClient(deps.bus), deps.keys)


def _cast(
    deps: FlowDeps, instance_id: str, project_id: str, action: str, args: dict[str, Any]
) -> None:
    caller = Caller(project_id, Context(project=project_id, user="trove-svc"))
    with tasks.starting(TaskManagerClient(deps.bus), caller, deps.settings.clock()) as start:
        start.task(deps.settings.new_id(), instance_id, action, args=args)


@dataclass(kw_only=True)
class OnBackup(FlowState):
    found: Backup


def _still_kept(deps: FlowDeps, claim: Claim) -> OnBackup:
    found = Backup.get_or_none(Backup.id == claim.task.args.get("backup_id"))
    if found is None:
        raise Skip("the backup is gone")
    return OnBackup(deps=deps, claim=claim, found=found)


def _remove_files(state: OnBackup) -> None:
    """Its files go (through its instance's guest if it has one, and from the control
    plane's repository where that is not the guest's own), then the backup: even if its
    task was canceled meanwhile."""
    found = state.found
    owner = Instance.get_or_none(Instance.id == found.instance_id)
    # The last backup of a deleted instance's repository takes the repository with it.
    last = owner is None and others_in_repository(found) == 0
    try:
        if owner is not None:
            _remove_through_guest(state.deps, state.claim, found)
        if owner is None or repository_copies.is_copied(state.deps, owner):
            # The control plane's repository: the instance's is gone, or a copy of it.
            _remove_from_store(state.deps, state.claim, found, last)
        if "s3" in found.details:
            bucket = object_store.open_bucket(
                state.deps.settings, found.details["s3"]["bucket"], found.details["s3"]["prefix"]
            )
            object_store.remove(bucket, found, last)
    except Exception as exc:
        LOG.exception("could not remove backup %s", found.id)
        Backup.update(state=BackupState.COMPLETED).where(
            (Backup.id == found.id) & (Backup.state == BackupState.DELETING)
        ).execute()
        raise StepFailed(f"Its files could not be removed: {_why_not_removed(exc)}") from exc
    Backup.delete().where(Backup.id == found.id).execute()
    state.outcome = Outcome(f"backup {found.name} ({found.id})")
    # A deleted instance's newest full backup its tenant deleted may have been kept only
    # by this one.
    remove_released(state.deps, found.instance_id)


def _remove_through_guest(deps: FlowDeps, claim: Claim, found: Backup) -> None:
    """The repository is the instance's: its guest removes the backup, as the account
    that owns it."""
    deps.bus.call_guest(
        found.instance_id,
        contract.RemoveBackup(found.id, str(found.label)),
        task_context(claim.task),
        deps.settings.call_timeout * 6,
    )


def _remove_from_store(deps: FlowDeps, claim: Claim, found: Backup, last: bool) -> None:
    with tempfile.TemporaryDirectory(
        prefix=f"{claim.task.id}-", dir=deps.settings.secrets_dir
    ) as scratch:
        backup_store.remove(deps.settings.backups_dir, found, Path(scratch), last)


def _why_not_removed(exc: Exception) -> str:
    if isinstance(exc, errors.TroveSvcError):
        return f"its instance's guest: {exc.message}"
    return str(exc) if isinstance(exc, backup_store.NotRemoved) else type(exc).__name__


DELETE_BACKUP: Flow[OnBackup] = Flow(
    begin=_still_kept,
    steps=(Step("removing its files", _remove_files),),
)


def delete_backup(deps: FlowDeps, claim: Claim) -> None:
    run_flow(DELETE_BACKUP, deps, claim)


@dataclass(kw_only=True)
class Verifying(OnBackup):
    caller: Caller
    instances: InstanceService
    throwaway: str | None = None


def _to_verify(deps: FlowDeps, claim: Claim) -> Verifying:
    found = _still_kept(deps, claim).found
    caller = Caller(found.project_id, Context(project=found.project_id, user="restore check"))
    return Verifying(
        deps=deps, claim=claim, found=found, caller=caller, instances=instance_service(deps)
    )


def _restore_into_throwaway(state: Verifying) -> None:
    found = state.found
    body = {
        "instance": {
            "name": f"check-{found.id[:8]}",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": found.datastore},
            "restorePoint": {"backupRef": found.id},
        }
    }
    try:
        state.throwaway = state.instances.create(state.caller, body).id
    except errors.TroveSvcError as exc:
        _record_check(found, state.deps, f"not checked: {exc.message}", {})
        raise StepFailed(exc.message) from exc


def _check_throwaway(state: Verifying) -> None:
    assert state.throwaway is not None
    outcome, counts = _check(state.deps, state.claim, state.throwaway)
    _record_check(state.found, state.deps, outcome, counts)
    if not outcome.startswith("passed"):
        raise StepFailed(outcome)
    state.outcome = Outcome(outcome)


def _remove_throwaway(state: Verifying) -> None:
    if state.throwaway is None:
        return
    try:
        state.instances.delete(state.caller, state.throwaway)
    except errors.TroveSvcError as exc:
        LOG.warning("could not remove the check's instance %s: %s", state.throwaway, exc.message)


VERIFY_BACKUP: Flow[Verifying] = Flow(
    begin=_to_verify,
    steps=(
        Step("restoring it into a throwaway instance", _restore_into_throwaway),
        Step("checking the restored instance", _check_throwaway),
    ),
    cleanup=_remove_throwaway,
)


def verify_backup(deps: FlowDeps, claim: Claim) -> None:
    """Restore the backup into a throwaway instance, check that it starts and answers,
    record its tables' row counts on the backup, and remove the throwaway."""
    run_flow(VERIFY_BACKUP, deps, claim)


def _check(deps: FlowDeps, claim: Claim, instance_id: str) -> tuple[str, dict[str, int]]:
    deadline = time.monotonic() + deps.settings.limit_build
    while claim.still_ours() and time.monotonic() < deadline:
        row = Instance.get_or_none(Instance.id == instance_id)
        health = ServiceStatus.get_or_none(ServiceStatus.instance == instance_id)
        if row is None or row.status == status.ERROR:
            return f"failed: {row.fault_message if row else 'the instance went away'}", {}
        if row.status == status.ACTIVE and health and health.operating_status == status.HEALTHY:
            try:
                counts = deps.bus.call_guest(
                    instance_id,
                    contract.TableRowCounts(),
                    guest_context(),
                    deps.settings.call_timeout,
                )
            except errors.TroveSvcError as exc:
                return f"failed: the restored datastore did not answer ({exc.message})", {}
            return f"passed: {len(counts)} tables, {sum(counts.values())} rows", counts
        time.sleep(POLL)
    return "failed: the restored instance did not come up in time", {}


def _record_check(found: Backup, deps: FlowDeps, outcome: str, counts: dict[str, int]) -> None:
    details = {**found.details, "row_counts": counts}
    Backup.update(
        verified_at=deps.settings.clock(), verify_outcome=outcome[:1000], details=details
    ).where(Backup.id == found.id).execute()
