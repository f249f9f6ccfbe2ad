"""Backups as the API asks for them: checked, recorded, handed to the task manager; and the
rules a backup's state follows as its guest reports on it.

A backup belongs to a project and outlives its instance. Incremental backups build on the
instance's newest completed backup. A restore to a time must fall in what the backups and
the archived logs cover; the API refuses other times with the range there is.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import peewee

from trove_datastores.base import BackupLayout, plain_id
from trove_svc import compute
from trove_svc.bus.messages import TaskManagerClient
from trove_svc.domain import errors, quotas, status, strategies, tasks
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.store.models import Backup, Instance, Task, database_proxy
from trove_wire import contract, datastores
from trove_wire.envelope import Context

if TYPE_CHECKING:  # the instances' service refers to backups' rules (reset_status)
    from trove_svc.domain.instances import InstanceService

LOG = logging.getLogger(__name__)


class BackupState(StrEnum):
    NEW = "NEW"
    BUILDING = "BUILDING"
    SAVING = "SAVING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    DELETING = "DELETING"  # its delete task removes its files


FINAL = (BackupState.COMPLETED, BackupState.FAILED)
RUNNING = (BackupState.NEW, BackupState.BUILDING, BackupState.SAVING)
# The guest's part: until it made the backup (SAVING on is the task manager's).
MAKING = (BackupState.NEW, BackupState.BUILDING)
BACKUP = status.BACKUP  # the instance's status while its backup runs


def newest_completed(instance_id: str, kind: str | None = None) -> Backup | None:
    """The instance's newest completed backup its tenant sees (of that kind, if named)."""
    condition = (
        (Backup.instance_id == instance_id)
        & (Backup.state == BackupState.COMPLETED)
        & Backup.tenant_visible()
    )
    if kind is not None:
        condition &= Backup.kind == kind
    return Backup.select().where(condition).order_by(Backup.created_at.desc()).first()


def chain(backup: Backup) -> list[Backup]:
    """The backup and its ancestors, oldest (the full one) first."""
    found = [backup]
    while found[0].parent_id:
        parent = Backup.get_or_none(Backup.id == found[0].parent_id)
        if parent is None:
            raise errors.Conflict(f"Backup {backup.id} lost its parent {found[0].parent_id}.")
        found.insert(0, parent)
    return found


def record_report(args: dict[str, Any], instance_id: str, now: float, backups_dir: Path) -> bool:
    """A guest's report on a backup of its own instance; only forward moves count, and a
    final state is never changed. Returns whether anything changed; BadReport (and nothing
    changed) for a report not of the contract's shape, or whose label or details are not
    the datastore's.

    A report names no path: what the store shows as the backup's location is derived from
    its ids here, and whatever acts on its files derives it again."""
    report = contract.read_backup_report(args)
    backup = Backup.get_or_none(
        (Backup.id == report.backup_id) & (Backup.instance_id == instance_id)
    )
    if backup is None:
        return False
    state = BackupState(report.state)
    fields: dict[str, Any] = {"state": state, "updated_at": now}
    # SAVING: the guest made it (what it made comes along) and the task manager stores it.
    if state in (BackupState.SAVING, BackupState.COMPLETED):
        naming = datastores.get(backup.datastore).backup_naming
        problem = naming.label_problem(report.label, backup.id) or naming.details_problem(
            report.details
        )
        if problem is not None:
            raise contract.BadReport(problem)
        fields.update(
            label=report.label,
            tool=report.tool,
            size=report.size,
            checksum=report.checksum,
            consistent_at=report.consistent_at,
            details=naming.restore_details(report.details or {}),
            location=str(location(backups_dir, backup)),
        )
    if state == BackupState.FAILED:
        fields["fail_reason"] = report.message or "the guest gave no reason"
    allowed_from = {
        BackupState.BUILDING: (BackupState.NEW,),
        BackupState.SAVING: (BackupState.NEW, BackupState.BUILDING),
        BackupState.COMPLETED: RUNNING,
        BackupState.FAILED: RUNNING,
    }.get(state, ())
    changed: int = (
        Backup.update(**fields)
        .where((Backup.id == backup.id) & Backup.state.in_(allowed_from))
        .execute()
    )
    return changed == 1


def abandon(instance_id: str, now: float, reason: str) -> bool:
    """End an instance's backup that nothing watches any more (its task manager died):
    the backup FAILED with the reason, the instance ACTIVE again (its data was never at
    stake), its open tasks FAILED. False if the instance left BACKUP meanwhile."""
    with database_proxy.atomic():
        if not status.move(instance_id, BACKUP, status.ACTIVE, now):
            return False
        tasks.end_open(instance_id, now, tasks.TaskState.FAILED, reason)
        settle_left_behind(instance_id, now, reason)
    return True


INSTANCE_DELETED = "The instance was deleted while its backup ran."


def _served_by_open_tasks(instance_id: str) -> set[str]:
    """The backups an open backup or delete_backup task of the instance works on."""
    rows = Task.select(Task.args).where(
        (Task.instance_id == instance_id)
        & Task.state.in_(tasks.OPEN)
        & Task.action.in_(("backup", "delete_backup"))
    )
    return {str(row.args.get("backup_id")) for row in rows}


def _made_and_safe(backup: Backup) -> bool:
    """Whether the guest made the backup and reported its checksum, and nothing is left
    but to call it COMPLETED: its repository outlives the instance, and its strategy asks
    for no copy in a bucket (which only its backup task makes)."""
    if backup.state != BackupState.SAVING or not backup.checksum:
        return False
    return strategies.bucket_of(backup.project_id, backup.instance_id) is None


def settle_left_behind(instance_id: str, now: float, reason: str) -> None:
    """End what the instance's backup tasks left when they ended without their flow (a
    delete canceled them, say): a backup still running is FAILED with the reason, or
    COMPLETED if its guest had already made it safely; a backup whose delete was canceled
    is COMPLETED again (still there, and deletable)."""
    with database_proxy.atomic():
        served = _served_by_open_tasks(instance_id)
        left = Backup.select().where(
            (Backup.instance_id == instance_id)
            & Backup.state.in_((*RUNNING, BackupState.DELETING))
            & Backup.id.not_in(list(served) or [""])
        )
        for backup in left:
            if backup.state == BackupState.DELETING:
                outcome: dict[str, Any] = {"state": BackupState.COMPLETED}
            elif _made_and_safe(backup):
                outcome = {"state": BackupState.COMPLETED}
            else:
                outcome = {"state": BackupState.FAILED, "fail_reason": reason[:1000]}
            Backup.update(updated_at=now, **outcome).where(
                (Backup.id == backup.id) & (Backup.state == backup.state)
            ).execute()


def _kept_in_repository(instance_id: str) -> peewee.ModelSelect:
    """The backups that keep the instance's repository: all but the FAILED ones, which
    nothing restores from (and the archived logs serve restores from backups only)."""
    return Backup.select().where(
        (Backup.instance_id == instance_id) & (Backup.state != BackupState.FAILED)
    )


def repository_kept(instance_id: str) -> bool:
    """Whether a backup still keeps the instance's repository."""
    return bool(_kept_in_repository(instance_id).exists())


def in_repository(backup: Backup) -> bool:
    """Whether the backup is a set in its tool's repository (else one file of its own)."""
    return datastores.get(backup.datastore).capabilities.backup_layout == BackupLayout.REPOSITORY


def repository(backups_dir: Path, instance_id: str) -> Path:
    """An instance's backup repository: its backups, and the logs archived for restores
    to a time. Derived from the deployment's backups directory and the instance's id."""
    return backups_dir / plain_id(instance_id)


def path_in_repository(backup: Backup) -> PurePosixPath:
    """The backup in its repository, relative to it: its set's directory, named by its
    label (which must be of the tool's grammar: ValueError if not), or its own file, named
    by its id."""
    naming = datastores.get(backup.datastore).backup_naming
    if in_repository(backup):
        return naming.set_path(str(backup.label))
    return PurePosixPath(naming.file_name(backup.id))


def location_in(repository: Path, backup: Backup) -> Path:
    """Where the backup is in a repository (its instance's, or a copy of it): the
    repository itself for a set in its tool's repository, else its own file there."""
    return repository if in_repository(backup) else repository / path_in_repository(backup)


def location(backups_dir: Path, backup: Backup) -> Path:
    """Where the backup is: derived from its ids, never taken from a report."""
    return location_in(repository(backups_dir, backup.instance_id), backup)


def files_in(repository: Path, backup: Backup) -> Path:
    """What the backup's checksum covers in a repository: its set's directory or its file."""
    return repository / path_in_repository(backup)


def others_in_repository(backup: Backup) -> int:
    """How many other backups keep the backup's repository."""
    return int(_kept_in_repository(backup.instance_id).where(Backup.id != backup.id).count())


def kept_by_tool(backup: Backup) -> str | None:
    """Why the datastore's tool still keeps this backup's data, or None: the newest full
    backup of a repository is the base of its instance's archived logs while the instance
    lives, and goes only with its repository (no other backups) once it is deleted."""
    if not in_repository(backup) or backup.kind != "full":
        return None
    newer_full = (
        Backup.select()
        .where(
            (Backup.instance_id == backup.instance_id)
            & (Backup.kind == "full")
            & (Backup.state == BackupState.COMPLETED)
            & (Backup.created_at > backup.created_at)
        )
        .exists()
    )
    if newer_full:
        return None
    if Instance.get_or_none(Instance.id == backup.instance_id) is not None:
        return (
            "it is its live instance's newest full backup, which the archived logs build on: "
            "until a newer full backup completes, or the instance is deleted"
        )
    if others_in_repository(backup):
        return (
            "it is the newest full backup in its repository: until the other backups of its "
            "deleted instance are deleted"
        )
    return None


def released(instance_id: str) -> list[Backup]:
    """The backups of the instance its tenant deleted that nothing keeps any more."""
    hidden = Backup.select().where(
        (Backup.instance_id == instance_id)
        & Backup.deleted_by_tenant_at.is_null(False)
        & (Backup.state == BackupState.COMPLETED)
    )
    return [backup for backup in hidden if kept_by_tool(backup) is None]


class BackupService:
    def __init__(
        self, settings: Settings, taskmanager: TaskManagerClient, instances: InstanceService
    ) -> None:
        self._settings = settings
        self._taskmanager = taskmanager
        self._instances = instances

    def _parent(self, instance: Instance, spec: dict[str, Any]) -> Backup | None:
        datastore = instance.datastore_version.datastore.name
        if spec.get("differential"):
            if spec.get("incremental") or spec.get("parent_id"):
                raise errors.BadRequest("A backup is differential or incremental, not both.")
            if not datastores.get(datastore).capabilities.differential_backups:
                raise errors.BadRequest(f"Differential backups are not supported for {datastore}.")
            return newest_completed(instance.id, kind="full")  # none yet: this one is full
        if not (spec.get("incremental") or spec.get("parent_id")):
            return None
        if not datastores.get(datastore).capabilities.incremental_backups:
            raise errors.BadRequest(f"Incremental backups are not supported for {datastore}.")
        newest = newest_completed(instance.id)
        wanted = spec.get("parent_id")
        if not wanted:
            return newest  # none yet: as in Trove, the first "incremental" backup is full
        if newest is None or wanted != newest.id:
            follows = f" ({newest.id})" if newest else ", and it has none yet"
            raise errors.BadRequest(
                f"An incremental backup follows the instance's newest completed backup{follows}."
            )
        return newest

    def create(
        self, caller: Caller, body: dict[str, Any], schedule_id: str | None = None
    ) -> Backup:
        spec = body["backup"]
        instance, _ = self._instances.get(caller, spec["instance"])
        datastore = instance.datastore_version.datastore.name
        if not datastores.get(datastore).capabilities.backups:
            raise errors.BadRequest(f"Backups are not supported for {datastore}.")
        if instance.replica_of_id:
            raise errors.BadRequest(
                f"Instance {instance.id} is a replica; back up its source "
                f"({instance.replica_of_id}), which holds the same data."
            )
        compute.require_reach("Backups", instance.provider)
        strategies.require_driver(caller.project_id, instance.id, spec.get("storage_driver"))
        status.require_active(instance.id, instance.status)
        parent = self._parent(instance, spec)
        quotas.check(self._settings, caller.project_id, 0, 0, new_backups=1)
        now = self._settings.clock()
        backup_id, task_id = self._settings.new_id(), self._settings.new_id()

        def take_back() -> None:
            Backup.delete().where(Backup.id == backup_id).execute()
            status.move(instance.id, BACKUP, status.ACTIVE, now)

        with tasks.starting(self._taskmanager, caller, now, undo=take_back) as start:
            if not status.move(instance.id, status.ACTIVE, BACKUP, now):
                raise errors.Conflict(f"Instance {instance.id} changed meanwhile; try again.")
            backup = Backup.create(
                id=backup_id,
                name=spec["name"],
                description=spec.get("description"),
                project_id=caller.project_id,
                instance_id=instance.id,
                datastore=datastore,
                datastore_version=instance.datastore_version.name,
                parent_id=parent.id if parent else None,
                kind=("differential" if spec.get("differential") else "incremental")
                if parent
                else "full",
                state=BackupState.NEW,
                schedule_id=schedule_id,
                created_at=now,
                updated_at=now,
            )
            start.task(task_id, instance.id, "backup", args={"backup_id": backup_id})
        return backup

    def get(self, caller: Caller, backup_id: str) -> Backup:
        backup = Backup.get_or_none(
            (Backup.id == backup_id)
            & (Backup.project_id == caller.project_id)
            & Backup.tenant_visible()
        )
        if backup is None:
            raise errors.NotFound(f"Backup {backup_id} could not be found.")
        return backup

    def page_of_instance(
        self, caller: Caller, instance_id: str, limit: int, marker: str | None
    ) -> tuple[list[Backup], str | None]:
        """The backups of one instance: the caller's instance, or one deleted since whose
        backups the caller still has (another project's answers 404)."""
        own_instance = Instance.select().where(
            (Instance.id == instance_id) & (Instance.project_id == caller.project_id)
        )
        own_backups = Backup.select().where(
            (Backup.instance_id == instance_id)
            & (Backup.project_id == caller.project_id)
            & Backup.tenant_visible()
        )
        if not own_instance.exists() and not own_backups.exists():
            raise errors.NotFound(f"Instance {instance_id} could not be found.")
        return self.page(caller, limit, marker, instance_id=instance_id)

    def page(
        self,
        caller: Caller,
        limit: int,
        marker: str | None,
        instance_id: str | None = None,
        datastore: str | None = None,
    ) -> tuple[list[Backup], str | None]:
        query = Backup.select().where(
            (Backup.project_id == caller.project_id) & Backup.tenant_visible()
        )
        if instance_id is not None:
            query = query.where(Backup.instance_id == instance_id)
        if datastore is not None:
            query = query.where(Backup.datastore == datastore)
        if marker is not None:
            marked = self.get(caller, marker)
            query = query.where(
                (Backup.created_at < marked.created_at)
                | ((Backup.created_at == marked.created_at) & (Backup.id < marked.id))
            )
        rows = list(query.order_by(Backup.created_at.desc(), Backup.id.desc()).limit(limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].id if more and rows else None)

    def delete(self, caller: Caller, backup_id: str) -> None:
        backup = self.get(caller, backup_id)
        if backup.state in RUNNING:
            raise errors.Conflict(f"Backup {backup_id} is {backup.state}; wait until it ends.")
        child = Backup.get_or_none(Backup.parent_id == backup_id)
        if child is not None:
            raise errors.Conflict(
                f"Backup {backup_id} is the base of backup {child.id}; delete that first."
            )
        if backup.state == BackupState.FAILED:
            Backup.delete().where(Backup.id == backup_id).execute()
            return
        kept_because = kept_by_tool(backup)
        if kept_because is None:
            self.remove(caller.project_id, backup, caller.context)
            return
        now = self._settings.clock()
        hidden = (
            Backup.update(deleted_by_tenant_at=now, updated_at=now)
            .where((Backup.id == backup_id) & (Backup.state == BackupState.COMPLETED))
            .execute()
        )
        if not hidden:
            raise errors.Conflict(f"Backup {backup_id} is being deleted already.")
        LOG.info("backup %s deleted by its tenant; its data stays: %s", backup_id, kept_because)
        self.remove_released(backup.instance_id)

    def remove_released(self, instance_id: str) -> None:
        """Remove the instance's backups its tenant deleted that nothing keeps any more
        (each a delete task, in the audit trail, asked by trove-svc)."""
        for backup in released(instance_id):
            requester = Context(project=backup.project_id, user="trove-svc")
            try:
                self.remove(backup.project_id, backup, requester)
            except errors.TroveSvcError as exc:
                LOG.warning("could not remove deleted backup %s: %s", backup.id, exc.message)
                continue
            LOG.info("backup %s its tenant deleted is removed: nothing keeps it", backup.id)

    def remove(self, project_id: str, backup: Backup, requester: Context) -> None:
        """Hand a completed backup to the task manager to remove its files and record."""
        now = self._settings.clock()
        task_id = self._settings.new_id()
        caller = Caller(project_id, requester)

        def keep() -> None:
            Backup.update(state=BackupState.COMPLETED).where(Backup.id == backup.id).execute()

        with tasks.starting(self._taskmanager, caller, now, undo=keep) as start:
            claimed = (
                Backup.update(state=BackupState.DELETING, updated_at=now)
                .where((Backup.id == backup.id) & (Backup.state == BackupState.COMPLETED))
                .execute()
            )
            if not claimed:
                raise errors.Conflict(f"Backup {backup.id} is being deleted already.")
            start.task(task_id, backup.instance_id, "delete_backup", args={"backup_id": backup.id})
