"""SHA-256 of a backup's files, read in chunks: the guest records it when it makes a
backup, the control plane checks it before a restore."""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1 << 20


def file_checksum(path: Path) -> tuple[int, str]:
    """(bytes, SHA-256) of one file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def tree_checksum(root: Path) -> tuple[int, str]:
    """(bytes, SHA-256) of every file below `root`, names included, in a stable order."""
    digest = hashlib.sha256()
    size = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    return size, digest.hexdigest()
