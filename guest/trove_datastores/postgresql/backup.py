"""PostgreSQL backups with pgBackRest: one stanza per instance, in its own repository,
with continuous WAL archiving (archive_command), so a restore can replay to a time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psycopg

from trove_datastores.postgresql.spec import BACKUP_NAMING, STANZA
from trove_guest.backups import BackupFailed, Made, run, tool_version, tree_checksum, wait_for

# Our kinds as pgBackRest calls them: an incremental backup holds the changes since the
# newest backup, a differential one those since the newest full backup.
_TYPES = {"full": "full", "incremental": "incr", "differential": "diff"}


class PgBackRest:
    def __init__(self, settings: dict[str, Any], connection: dict[str, Any]) -> None:
        self._config = str(settings["pgbackrest_config"])
        self._stanza = str(settings["stanza"])
        self._repository = Path(settings["dir"])
        self._connection = connection

    def _pgbackrest(self, *args: str) -> list[str]:
        return ["pgbackrest", f"--config={self._config}", f"--stanza={self._stanza}", *args]

    def _info(self) -> dict[str, Any]:
        found: list[dict[str, Any]] = json.loads(
            run(self._pgbackrest("--output=json", "info"), "pgbackrest info")
        )
        return found[0]

    def backup(self, backup_id: str, kind: str, parent_label: str | None) -> Made:
        before = {b["label"] for b in self._info().get("backup", [])}
        if kind != "full" and parent_label not in before:
            raise BackupFailed(f"the parent backup {parent_label} is not in the repository")
        run(self._pgbackrest(f"--type={_TYPES[kind]}", "backup"), "pgbackrest backup")
        made = [b for b in self._info().get("backup", []) if b["label"] not in before]
        if len(made) != 1:
            raise BackupFailed("pgbackrest made no new backup set")
        entry = made[0]
        label = str(entry["label"])
        try:
            made_set = self._repository / BACKUP_NAMING.set_path(label)
        except ValueError as exc:
            raise BackupFailed(f"pgbackrest made a set labelled {label[:64]!r}: {exc}") from exc
        size, checksum = tree_checksum(made_set)
        return Made(
            label=label,
            tool=tool_version(["pgbackrest", "version"], "pgbackrest"),
            size=size,
            checksum=checksum,
            consistent_at=float(entry["timestamp"]["stop"]),
        )

    def remove(self, backup_id: str, label: str) -> None:
        """Expire the set (its WAL goes with it where nothing else needs it), once it is
        checked to be a label pgBackRest gives."""
        BACKUP_NAMING.set_path(label)
        if label not in {b["label"] for b in self._info().get("backup", [])}:
            return
        run(self._pgbackrest(f"--set={label}", "expire"), "pgbackrest expire")

    @staticmethod
    def remove_from(repository: Path, backup_id: str, label: str, scratch: Path) -> None:
        """Expire the set from a repository no server archives to any more: with no
        configuration but the repository's path (and no retention of its own, so nothing
        but this set goes), the tool's logs and locks in `scratch`. What pgBackRest
        rewrote then goes back to the repository's owner (the control plane runs this as
        its own account)."""
        backup_set = repository / BACKUP_NAMING.set_path(label)
        if not os.path.lexists(backup_set):
            return
        scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
        argv = [
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
        ]
        run(argv, "pgbackrest expire", timeout=600)
        give_back(repository)

    def archive_logs(self) -> dict[str, Any]:
        """Switch to a new WAL segment and wait until the closed one is archived."""
        params = {k: self._connection[k] for k in ("host", "port", "user", "password")}
        with psycopg.connect(**params, dbname="postgres", autocommit=True) as conn:
            switched = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            segment = str(switched[0]) if switched else ""

            def archived() -> bool:
                row = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
                return bool(row and row[0] and str(row[0]) >= segment)

            wait_for(archived, 60, "archiving the current WAL segment")
            now = conn.execute("SELECT extract(epoch FROM now())").fetchone()
        return {"archived_until": float(now[0]) if now else 0.0}


def give_back(repository: Path) -> None:
    """What pgBackRest rewrote as this account goes back to the repository's owner, link
    by link where there are links (never what one points to)."""
    owner = os.lstat(repository)
    for _path, directories, files, directory_fd in os.fwalk(repository, follow_symlinks=False):
        os.chown(directory_fd, owner.st_uid, owner.st_gid)
        for name in [*directories, *files]:
            os.chown(name, owner.st_uid, owner.st_gid, dir_fd=directory_fd, follow_symlinks=False)
