"""A backup's files in its instance's repository, as the task manager sees them: their
checksums checked before a restore, removed when the backup is deleted.

A backup is a set in its tool's repository (checked as a tree) or a single compressed file,
as its datastore's spec says (`backup_layout`); its datastore's backup engine removes it.
Every path is derived from the backup's ids (trove_svc.domain.backups), and the repository
belongs to the instance's account: nothing here follows a link in it.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import trove_guest.backups as backup_engines
from trove_svc.domain import backups
from trove_svc.domain.backups import in_repository
from trove_svc.store.models import Backup
from trove_wire import datastores
from trove_wire.checksums import NotRegular, file_checksum, tree_checksum


class BackupDamaged(Exception):
    """A backup's files are not what was made: missing, or changed since."""


class NotRemoved(Exception):
    """The backup tool would not remove a backup; the message is the tool's."""


def check(backup: Backup, repository: Path) -> None:
    """BackupDamaged unless the backup's files in `repository` (its instance's, or a copy
    of it) hash to what its guest recorded, none of them a link."""
    try:
        artifact = backups.files_in(repository, backup)
    except ValueError as exc:
        raise BackupDamaged(f"Backup {backup.id} cannot be found: {exc}.") from exc
    if not os.path.lexists(artifact):
        raise BackupDamaged(f"Backup {backup.id}'s files are gone ({artifact.name}).")
    try:
        _, found = tree_checksum(artifact) if in_repository(backup) else file_checksum(artifact)
    except NotRegular as exc:
        raise BackupDamaged(
            f"Backup {backup.id} failed its checksum: {exc} where its files should be."
        ) from exc
    if found != backup.checksum:
        raise BackupDamaged(
            f"Backup {backup.id} failed its checksum: its files changed since it was made "
            f"(sha256 {found[:16]}..., recorded {str(backup.checksum)[:16]}...)."
        )


def as_restore_source(backup: Backup, repository: Path) -> dict[str, Any]:
    """What a datastore's restore reads of a backup in `repository`: its location there,
    its label, and of its details only those the restore needs."""
    naming = datastores.get(backup.datastore).backup_naming
    return {
        "label": backup.label,
        "location": str(backups.location_in(repository, backup)),
        "details": naming.restore_details(backup.details or {}),
    }


def _real_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def remove(backups_dir: Path, backup: Backup, scratch: Path, last: bool) -> None:
    """Remove the files of a backup whose instance is gone (a live instance's guest
    removes its own). The last backup takes the whole repository along (the archived logs
    there serve nothing else). Otherwise its datastore's backup engine removes it as its
    tool keeps its books (the tool's logs and locks in `scratch`), and the repository
    stays its owner's."""
    if last:
        remove_repository(backups_dir, backup.instance_id)
        return
    repository = backups.repository(backups_dir, backup.instance_id)
    if os.path.islink(repository):
        raise NotRemoved(f"the repository of instance {backup.instance_id} is a link")
    engine = backup_engines.engine_class(backup.datastore)
    try:
        engine.remove_from(repository, backup.id, str(backup.label), scratch)
    except (ValueError, backup_engines.BackupFailed) as exc:
        raise NotRemoved(str(exc)) from exc


def remove_repository(backups_dir: Path, instance_id: str) -> None:
    """Remove a deleted instance's whole repository, once nothing keeps it: its backups
    and the logs archived beside them (which serve nothing else)."""
    repository = backups.repository(backups_dir, instance_id)
    if os.path.islink(repository):
        raise NotRemoved(f"the repository of instance {instance_id} is a link")
    if _real_directory(repository):
        # The walk goes by open directories, so a link put in mid-walk is removed, not
        # followed (shutil.rmtree.avoids_symlink_attacks on this platform).
        shutil.rmtree(repository)
