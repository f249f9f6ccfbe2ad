"""Backups made by the guest with the datastore's own tool, into the instance's own
repository: pgBackRest for PostgreSQL, mariadb-backup for MariaDB, an RDB snapshot for
Redis. Each engine streams what the tool makes through zstd and a SHA-256 as it goes, so
nothing is held whole in memory, and reports what it made. This module holds what the
engines share; each is `trove_datastores.<name>.backup`."""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from trove_datastores.base import BackupNaming
from trove_wire import datastores
from trove_wire.checksums import tree_checksum

__all__ = [
    "BackupFailed",
    "Engine",
    "Made",
    "compressed_to",
    "engine_class",
    "load_engine",
    "rate_limit",
    "remove_file",
    "run",
    "tree_checksum",
]

CHUNK = 1 << 20
# What a backup is made with in its repository: its account's, and readable by the
# repository's group (the control plane's, which checks, copies and restores it), as
# pgBackRest makes its own. Set explicitly: the agent's umask may be stricter.
READABLE_FILE = 0o640
READABLE_DIRECTORY = 0o750


class BackupFailed(Exception):
    """The tool failed; the message says why (its last words, no secret)."""


@dataclass(frozen=True)
class Made:
    """What a backup made, for its record (where it is follows from the backup's id)."""

    label: str
    tool: str
    size: int
    checksum: str
    consistent_at: float
    details: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    """A datastore's backup tool, as its guest runs it beside the server (`backup`,
    `remove`, `archive_logs`), and as the control plane runs it on a repository whose
    instance is gone (`remove_from`)."""

    def __init__(self, settings: dict[str, Any], connection: dict[str, Any]) -> None: ...
    def backup(self, backup_id: str, kind: str, parent_label: str | None) -> Made: ...
    def remove(self, backup_id: str, label: str) -> None: ...
    def archive_logs(self) -> dict[str, Any]: ...

    @staticmethod
    def remove_from(repository: Path, backup_id: str, label: str, scratch: Path) -> None:
        """Remove a backup from `repository` with no server beside it, as the tool keeps
        its books (the tool's logs and locks go to `scratch`); ValueError for a label that
        is not the tool's, BackupFailed if the tool fails."""


def remove_file(repository: Path, naming: BackupNaming, backup_id: str) -> None:
    """Remove the file a backup was made into (named from its id alone)."""
    (repository / naming.file_name(backup_id)).unlink(missing_ok=True)


def engine_class(datastore: str) -> type[Engine]:
    """The backup engine the datastore's spec names."""
    module_name, class_name = datastores.get(datastore).backup_engine.split(":")
    found: type[Engine] = getattr(importlib.import_module(module_name), class_name)
    return found


def load_engine(datastore: str, settings: dict[str, Any], connection: dict[str, Any]) -> Engine:
    return engine_class(datastore)(settings, connection)


def rate_limit(settings: dict[str, Any]) -> int:
    """The bytes a second a backup may write to its repository (0: no limit)."""
    return max(0, int(settings.get("max_rate") or 0))


def compressed_to(source: IO[bytes], target: Path, max_rate: int = 0) -> tuple[int, str]:
    """Stream `source` through zstd into `target` (READABLE_FILE); returns (size, SHA-256)
    of what was written. With `max_rate`, no more than that many bytes a second are
    written: the pipes fill and the tool waits, so that a backup leaves its instance's
    disk the room to serve."""
    digest = hashlib.sha256()
    size = 0
    zstd = subprocess.Popen(["zstd", "-q", "-c", "-T0", "-3"], stdin=source, stdout=subprocess.PIPE)
    assert zstd.stdout is not None
    tmp = target.with_name(target.name + ".part")
    # Under a limit, reads small enough that the writes come at an even pace.
    step = CHUNK if max_rate <= 0 else max(4096, min(CHUNK, max_rate // 4))
    started = time.monotonic()
    with tmp.open("wb") as out:
        tmp.chmod(READABLE_FILE)
        while chunk := zstd.stdout.read(step):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
            if max_rate > 0:
                ahead = size / max_rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    if zstd.wait() != 0:
        tmp.unlink(missing_ok=True)
        raise BackupFailed("zstd failed to compress the backup stream")
    tmp.replace(target)
    return size, digest.hexdigest()


def run(argv: list[str], what: str, timeout: float = 3600) -> str:
    """Run a tool; BackupFailed with the end of its error output if it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BackupFailed(f"{what} failed: {' '.join(tail)[:500]}")
    return done.stdout


def tool_version(argv: list[str], name: str) -> str:
    """The first line a tool says of its version, on stdout or, as mariadb-backup does,
    on stderr; its bare name when it says nothing."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    said = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return said[0][:200] if said else name


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BackupFailed(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.2)
