"""A backup's files in its instance's repository, as the task manager sees them: their
checksums checked before a restore, removed when the backup is deleted.

pgBackRest keeps a backup as a set in its repository (checked as a tree); mariadb-backup
and Redis backups are single compressed files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from trove_svc.backups import in_repository
from trove_svc.store.models import Backup
from trove_wire.checksums import file_checksum, tree_checksum


class BackupDamaged(Exception):
    """A backup's files are not what was made: missing, or changed since."""


class NotRemoved(Exception):
    """The backup tool would not remove a backup; the message is the tool's."""


def _artifact(backup: Backup) -> Path:
    location = Path(str(backup.location))
    if in_repository(backup):
        stanza = str(backup.details.get("stanza", "trove"))
        return location / "backup" / stanza / str(backup.label)
    return location


def check(backup: Backup) -> None:
    """BackupDamaged unless the backup's files hash to what its guest recorded."""
    artifact = _artifact(backup)
    if not artifact.exists():
        raise BackupDamaged(f"Backup {backup.id}'s files are gone ({artifact.name}).")
    _, found = tree_checksum(artifact) if artifact.is_dir() else file_checksum(artifact)
    if found != backup.checksum:
        raise BackupDamaged(
            f"Backup {backup.id} failed its checksum: its files changed since it was made "
            f"(sha256 {found[:16]}..., recorded {str(backup.checksum)[:16]}...)."
        )


def as_restore_source(backup: Backup) -> dict[str, Any]:
    return {"label": backup.label, "location": backup.location, "details": backup.details}


def repository_of(backup: Backup) -> Path:
    """The directory with all of an instance's backups (and its archived logs)."""
    location = Path(str(backup.location))
    return location if in_repository(backup) else location.parent


def remove(backup: Backup, scratch: Path, last: bool) -> None:
    """Remove the backup's files. The last backup of an instance that is gone takes its
    whole repository along (the archived logs there serve nothing else). Otherwise
    pgBackRest expires its set (keeping the repository's books right), and the repository
    stays its owner's."""
    if last:
        shutil.rmtree(repository_of(backup), ignore_errors=True)
        return
    if not in_repository(backup):
        Path(str(backup.location)).unlink(missing_ok=True)
        return
    repository = Path(str(backup.location))
    if not (_artifact(backup)).exists():
        return
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    expired = subprocess.run(
        [
            "pgbackrest",
            "--config=/dev/null",
            f"--stanza={backup.details.get('stanza', 'trove')}",
            f"--repo1-path={repository}",
            f"--log-path={scratch}",
            f"--lock-path={scratch}",
            "--log-level-console=warn",
            "--log-level-file=off",
            "--repo1-retention-full=9999999",
            f"--set={backup.label}",
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
    owner = repository.stat()
    for path in [repository, *repository.rglob("*")]:
        os.lchown(path, owner.st_uid, owner.st_gid)
