"""What a create that restores from a backup hands its datastore's role: the backup chain,
its files checked against their checksums first, and (for a restore to a time) the
source's logs archived up to now. Every path it hands over is derived from the backups'
ids: the instance's repository, or a copy of it staged from the backups' bucket."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from trove_svc.bus.client import Bus
from trove_svc.domain import backups, errors
from trove_svc.process.settings import Settings
from trove_svc.store.models import Backup, Instance, Task
from trove_svc.taskmanager import backup_store, object_store
from trove_svc.taskmanager.deps import guest_context, task_context
from trove_wire import contract, datastores

LOG = logging.getLogger(__name__)


class RestoreRefused(Exception):
    """The restore cannot go ahead; the message says why, for the instance's fault."""


def restore_vars(settings: Settings, bus: Bus, task: Task) -> dict[str, Any]:
    """The role variables of the restore a create asks for (none if it asks for none)."""
    wanted = task.args.get("restore")
    if not wanted:
        return {}
    found = Backup.get_or_none(Backup.id == wanted["backup_id"])
    if found is None:
        raise RestoreRefused(f"Backup {wanted['backup_id']} is gone.")
    try:
        chain = [(link, _at_hand(settings, link, task.id)) for link in backups.chain(found)]
        for link, repository in chain:
            backup_store.check(link, repository)
    except (backup_store.BackupDamaged, errors.TroveSvcError) as exc:
        raise RestoreRefused(getattr(exc, "message", str(exc))) from exc
    target = wanted.get("restore_time")
    if target is not None:
        _archive_source_logs(settings, bus, found, task)
    spec = datastores.get(found.datastore)
    sources = [backup_store.as_restore_source(link, repository) for link, repository in chain]
    return spec.role_vars({"restore": spec.restore_vars(sources, target)})


def staging_dir(settings: Settings, task_id: str) -> Path:
    return settings.state_dir / "staging" / task_id


def _at_hand(settings: Settings, backup: Backup, task_id: str) -> Path:
    """The repository the restore reads the backup from: its instance's, or a copy of it
    fetched from its bucket when that no longer has the backup's files."""
    repository = backups.repository(settings.backups_dir, backup.instance_id)
    if os.path.islink(repository):
        raise backup_store.BackupDamaged(f"Backup {backup.id}'s repository is a link.")
    try:
        here = os.path.lexists(backups.files_in(repository, backup))
    except ValueError as exc:
        raise backup_store.BackupDamaged(f"Backup {backup.id} cannot be found: {exc}.") from exc
    if here or "s3" not in backup.details:
        return repository
    s3 = backup.details["s3"]
    bucket = object_store.open_bucket(settings, s3["bucket"], s3["prefix"])
    staging = staging_dir(settings, task_id)
    for directory in (staging.parent, staging):
        # The restored instance's account passes through, to what it is lent by ACL.
        directory.mkdir(exist_ok=True)
        if os.path.islink(directory):
            raise backup_store.BackupDamaged(f"The staging directory {directory} is a link.")
        directory.chmod(0o711)
    return object_store.fetch(bucket, backup, staging)


def _archive_source_logs(settings: Settings, bus: Bus, found: Backup, task: Task) -> None:
    """The source, if it still runs, closes and archives its logs: the repository then
    holds everything up to now."""
    if Instance.get_or_none(Instance.id == found.instance_id) is None:
        return
    context = task_context(task)
    try:
        archived = bus.call_guest(
            found.instance_id, contract.ArchiveLogs(), context, settings.call_timeout * 6
        )
    except errors.TroveSvcError as exc:
        raise RestoreRefused(
            f"The source instance could not archive its logs for the restore: {exc.message}"
        ) from exc
    _record_reach(found, float(archived.get("archived_until") or 0))


def _record_reach(backup: Backup, archived_until: float) -> None:
    """The backup's logs reach at least `archived_until` (epoch seconds)."""
    reach = max(archived_until, backup.details.get("logs_until") or 0)
    details = {**backup.details, "logs_until": reach}
    Backup.update(details=details).where(Backup.id == backup.id).execute()


def archive_before_delete(settings: Settings, bus: Bus, instance: Instance) -> None:
    """An instance about to be deleted archives its logs once more and its backups record
    how far they reach: restores to a time after its last backup then still reach up to
    its delete. Best effort: a guest that does not answer archives nothing."""
    if not datastores.get(instance.datastore_version.datastore.name).capabilities.point_in_time:
        return
    kept = list(
        Backup.select().where(
            (Backup.instance_id == instance.id) & (Backup.state == backups.BackupState.COMPLETED)
        )
    )
    if not kept:
        return
    try:
        archived = bus.call_guest(
            instance.id, contract.ArchiveLogs(), guest_context(), settings.call_timeout * 6
        )
    except errors.TroveSvcError as exc:
        LOG.warning("instance %s archived no logs before its delete: %s", instance.id, exc.message)
        return
    until = float(archived.get("archived_until") or 0)
    for backup in kept:
        _record_reach(backup, until)
