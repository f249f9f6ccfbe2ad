"""Redis backups: an RDB snapshot (BGSAVE) and the ACL users, packed (tar) and streamed
through zstd (full backups only)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from trove_datastores.redis.spec import BACKUP_NAMING
from trove_guest.backups import (
    BackupFailed,
    Made,
    compressed_to,
    rate_limit,
    remove_file,
    wait_for,
)


class RedisSnapshot:
    def __init__(self, settings: dict[str, Any], connection: dict[str, Any]) -> None:
        self._repository = Path(settings["dir"])
        self._max_rate = rate_limit(settings)
        self._client = redis.Redis(
            host=connection["host"],
            port=int(connection["port"]),
            username=connection["user"],
            password=connection["password"],
            socket_timeout=30,
        )

    def backup(self, backup_id: str, kind: str, parent_label: str | None) -> Made:
        if kind != "full":
            raise BackupFailed("Redis backups are full snapshots only")
        before = self._client.lastsave()
        self._client.bgsave()
        wait_for(lambda: self._client.lastsave() != before, 600, "the RDB snapshot")
        where = Path(str(self._client.config_get("dir").get("dir")))
        snapshot = str(self._client.config_get("dbfilename").get("dbfilename"))
        acl = Path(str(self._client.config_get("aclfile").get("aclfile")))
        self._repository.mkdir(parents=True, exist_ok=True)
        target = self._repository / BACKUP_NAMING.file_name(backup_id)
        # The users live beside the data, in the ACL file: a restore brings both back.
        pack = subprocess.Popen(
            ["tar", "-c", "-C", str(where), snapshot, "-C", str(acl.parent), acl.name],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert pack.stdout is not None
        size, checksum = compressed_to(pack.stdout, target, self._max_rate)
        if pack.wait() != 0:
            target.unlink(missing_ok=True)
            raise BackupFailed("tar could not pack the snapshot and the ACL users")
        info = self._client.info("server")
        return Made(
            label=backup_id,
            tool=f"redis {info.get('redis_version', '?')} BGSAVE",
            size=size,
            checksum=checksum,
            consistent_at=self._client.lastsave().timestamp(),
        )

    def remove(self, backup_id: str, label: str) -> None:
        remove_file(self._repository, BACKUP_NAMING, backup_id)

    @staticmethod
    def remove_from(repository: Path, backup_id: str, label: str, scratch: Path) -> None:
        remove_file(repository, BACKUP_NAMING, backup_id)

    def archive_logs(self) -> dict[str, Any]:
        return {"archived_until": time.time()}
