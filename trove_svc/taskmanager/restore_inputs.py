"""What a create that restores from a backup hands its datastore's role: the backup chain,
its files checked against their checksums first, and (for a restore to a time) the
source's logs archived up to now. Every path it hands over is derived from the backups'
ids: the instance's repository, or a copy of it staged from the backups' bucket."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from trove_svc.domain import backups, errors
from trove_svc.process.settings import Settings
from trove_svc.store.models import Backup, Instance
from trove_svc.taskmanager import backup_store, object_store, repository_copies
from trove_svc.taskmanager.deps import Claim, FlowDeps, guest_context, task_context
from trove_wire import contract, datastores

LOG = logging.getLogger(__name__)


class RestoreRefused(Exception):
    """The restore cannot go ahead; the message says why, for the instance's fault."""


def restore_vars(deps: FlowDeps, claim: Claim, target: Instance) -> dict[str, Any]:
    """The run variables of the restore a create asks for (none if it asks for none)."""
    settings, task = deps.settings, claim.task
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
    restore_time = wanted.get("restore_time")
    if restore_time is not None:
        _archive_source_logs(deps, claim, found)
    read_from, copies = repository_copies.restore_copies(
        deps, target, [repository for _, repository in chain]
    )
    spec = datastores.get(found.datastore)
    sources = [
        backup_store.as_restore_source(link, read_from[repository]) for link, repository in chain
    ]
    return {
        **spec.role_vars({"restore": spec.restore_vars(sources, restore_time)}),
        **repository_copies.restore_copy_vars(copies),
    }


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


def _archive_source_logs(deps: FlowDeps, claim: Claim, found: Backup) -> None:
    """The source, if it still runs, closes and archives its logs: the control plane's
    repository then holds everything up to now (copied from the source's host, if it is
    on another)."""
    source = Instance.get_or_none(Instance.id == found.instance_id)
    if source is None:
        return
    try:
        archived = deps.bus.call_guest(
            source.id,
            contract.ArchiveLogs(),
            task_context(claim.task),
            deps.settings.call_timeout * 6,
        )
        repository_copies.collect(deps, claim, source)
    except errors.TroveSvcError as exc:
        raise RestoreRefused(
            f"The source instance could not archive its logs for the restore: {exc.message}"
        ) from exc
    except repository_copies.NotCollected as exc:
        raise RestoreRefused(f"The source instance's logs could not be copied: {exc}") from exc
    _record_reach(found, float(archived.get("archived_until") or 0))


def _record_reach(backup: Backup, archived_until: float) -> None:
    """The backup's logs reach at least `archived_until` (epoch seconds)."""
    reach = max(archived_until, backup.details.get("logs_until") or 0)
    details = {**backup.details, "logs_until": reach}
    Backup.update(details=details).where(Backup.id == backup.id).execute()


def archive_before_delete(deps: FlowDeps, claim: Claim, instance: Instance) -> None:
    """An instance about to be deleted archives its logs once more (copied from its host,
    if it is on another) and its backups record how far they reach: restores to a time
    after its last backup then still reach up to its delete. Best effort: a guest that does
    not answer archives nothing."""
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
        archived = deps.bus.call_guest(
            instance.id, contract.ArchiveLogs(), guest_context(), deps.settings.call_timeout * 6
        )
        repository_copies.collect(deps, claim, instance)
    except errors.TroveSvcError as exc:
        LOG.warning("instance %s archived no logs before its delete: %s", instance.id, exc.message)
        return
    except repository_copies.NotCollected as exc:
        LOG.warning("instance %s's last logs stay on its host: %s", instance.id, exc)
        return
    until = float(archived.get("archived_until") or 0)
    for backup in kept:
        _record_reach(backup, until)
