"""MariaDB backups with mariadb-backup, streamed (xbstream) through zstd; incremental ones
build on their parent's last LSN. Binary logs are archived beside them for restores to a
time."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pymysql

from trove_datastores.mariadb.spec import BACKUP_NAMING
from trove_guest.backups import (
    READABLE_DIRECTORY,
    READABLE_FILE,
    BackupFailed,
    Made,
    compressed_to,
    rate_limit,
    remove_file,
    tool_version,
)


class MariaDBBackup:
    def __init__(self, settings: dict[str, Any], connection: dict[str, Any]) -> None:
        self._repository = Path(settings["dir"])
        self._socket = str(settings["socket"])
        self._data_dir = Path(settings["data_dir"])
        self._max_rate = rate_limit(settings)
        self._connection = connection

    def _client_file(self, directory: Path) -> Path:
        """The admin's login for the tools, in a 0600 file (never on a command line)."""
        path = directory / "client.cnf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(
                "[client]\n"
                f"user={self._connection['user']}\n"
                f"password={self._connection['password']}\n"
                f"socket={self._socket}\n"
            )
        return path

    def backup(self, backup_id: str, kind: str, parent_label: str | None) -> Made:
        self._repository.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._repository) as work:
            workdir = Path(work)
            lsn_dir = workdir / "lsn"
            argv = [
                "mariadb-backup",
                f"--defaults-extra-file={self._client_file(workdir)}",
                "--backup",
                "--stream=xbstream",
                f"--target-dir={workdir / 'target'}",
                f"--extra-lsndir={lsn_dir}",
            ]
            if kind == "incremental":
                if not parent_label or not parent_label.startswith("lsn:"):
                    raise BackupFailed("an incremental backup needs its parent's LSN")
                argv.append(f"--incremental-lsn={parent_label.removeprefix('lsn:')}")
            target = self._repository / BACKUP_NAMING.file_name(backup_id)
            log = (workdir / "backup.log").open("w")
            tool = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log)
            assert tool.stdout is not None
            size, checksum = compressed_to(tool.stdout, target, self._max_rate)
            if tool.wait() != 0:
                target.unlink(missing_ok=True)
                log.close()
                tail = (workdir / "backup.log").read_text(errors="replace").splitlines()[-3:]
                raise BackupFailed(f"mariadb-backup failed: {' '.join(tail)[:500]}")
            log.close()
            checkpoints = _key_values((lsn_dir / "xtrabackup_checkpoints").read_text())
            info = _key_values((lsn_dir / "xtrabackup_info").read_text())
            # binlog_pos = filename 'mariadb-bin.000003', position '453', GTID of ...
            binlog = re.findall(r"'([^']*)'", info.get("binlog_pos", ""))
        return Made(
            label=f"lsn:{checkpoints['to_lsn']}",
            tool=tool_version(["mariadb-backup", "--version"], "mariadb-backup"),
            size=size,
            checksum=checksum,
            consistent_at=time.time(),
            details={
                "binlog_file": binlog[0] if binlog else None,
                "binlog_position": binlog[1] if len(binlog) > 1 else None,
            },
        )

    def remove(self, backup_id: str, label: str) -> None:
        remove_file(self._repository, BACKUP_NAMING, backup_id)

    @staticmethod
    def remove_from(repository: Path, backup_id: str, label: str, scratch: Path) -> None:
        remove_file(repository, BACKUP_NAMING, backup_id)

    def archive_logs(self) -> dict[str, Any]:
        """Close the current binary log and copy every closed one into the repository."""
        conn = pymysql.connect(
            unix_socket=self._socket,
            user=self._connection["user"],
            password=self._connection["password"],
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute("FLUSH BINARY LOGS")
                cursor.execute("SHOW BINARY LOGS")
                names = [str(row[0]) for row in cursor.fetchall()]
                cursor.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
                now = float(cursor.fetchone()[0])  # type: ignore[index]
        finally:
            conn.close()
        archive = self._repository / "binlogs"
        archive.mkdir(parents=True, exist_ok=True)
        archive.chmod(READABLE_DIRECTORY)
        for name in names[:-1]:  # the last one is still being written
            if not (archive / name).exists():
                part = archive / (name + ".part")
                shutil.copyfile(self._data_dir / name, part)
                part.chmod(READABLE_FILE)
                part.replace(archive / name)
        return {"archived_until": now, "binlogs": names[:-1]}


def _key_values(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
    return found
