"""A backup's files in its instance's repository, as the task manager sees them: their
checksums checked before a restore, removed when the backup is deleted.

pgBackRest keeps a backup as a set in its repository (checked as a tree); mariadb-backup
and Redis backups are single compressed files. Every path is derived from the backup's
ids (trove_svc.backups), and the repository belongs to the instance's account: nothing
here follows a link in it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from trove_svc import backups
from trove_svc.backups import in_repository
from trove_svc.store.models import Backup
from trove_wire import datastores
from trove_wire.checksums import NotRegular, file_checksum, tree_checksum
from trove_wire.datastores.postgresql import STANZA


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
    there serve nothing else). Otherwise pgBackRest expires its set (keeping the
    repository's books right), and the repository stays its owner's."""
    if last:
        remove_repository(backups_dir, backup.instance_id)
        return
    repository = backups.repository(backups_dir, backup.instance_id)
    if os.path.islink(repository):
        raise NotRemoved(f"the repository of instance {backup.instance_id} is a link")
    if not in_repository(backup):
        backups.location_in(repository, backup).unlink(missing_ok=True)
        return
    try:
        backup_set = backups.files_in(repository, backup)
    except ValueError as exc:
        raise NotRemoved(str(exc)) from exc
    if not os.path.lexists(backup_set):
        return
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    expired = subprocess.run(
        [
            "pgbackrest",
            "--config=/dev/null",
            f"--stanza={STANZA}",
            f"--repo1-path={repository}",
            f"--log-path={scratch}",
            f"--lock-path={scratch}",
            "--log-level-console=warn",
            "--log-level-file=off",
            "--repo1-retention-full=9999999",
            f"--set={backup_set.name}",
            "expire",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if expired.returncode != 0:
        said = " ".join((expired.stderr + expired.stdout).split()) or "no message"
        raise NotRemoved(f"pgbackrest expire: {said[:500]}")
    _give_back(repository)


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


def _give_back(repository: Path) -> None:
    """What pgBackRest rewrote as this account goes back to the repository's owner, link
    by link where there are links (never what one points to)."""
    owner = os.lstat(repository)
    for _path, directories, files, directory_fd in os.fwalk(repository, follow_symlinks=False):
        os.chown(directory_fd, owner.st_uid, owner.st_gid)
        for name in [*directories, *files]:
            os.chown(name, owner.st_uid, owner.st_gid, dir_fd=directory_fd, follow_symlinks=False)
