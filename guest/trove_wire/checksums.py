"""SHA-256 of a backup's files, read in chunks: the guest records it when it makes a
backup, the control plane checks it before a restore.

A backup's files are in a directory its instance's account can change, so they are read
without following a link anywhere on the way: a link, a pipe or a device where a backup's
file should be is NotRegular, never read through.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CHUNK = 1 << 20

_NO_LINK = os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a pipe swapped in after its check must not hold the reader forever.
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | _NO_LINK
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | _NO_LINK


class NotRegular(OSError):
    """A link or special file (or a link for a directory) among a backup's files."""


def _open(name: str | Path, flags: int, dir_fd: int | None, where: str) -> int:
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise NotRegular(f"{where} is a link, or a link stands on its way") from exc
        raise


def _regular(fd: int, where: str) -> BinaryIO:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegular(f"{where} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def open_regular(path: Path) -> BinaryIO:
    """A regular file for reading; NotRegular if `path` is a link or anything else."""
    return _regular(_open(path, _FILE_FLAGS, None, path.name), path.name)


def open_below(root: Path, relative: PurePosixPath) -> BinaryIO:
    """A regular file below `root` for reading, following no link on the way (neither
    `root` nor any directory between it and the file)."""
    directory = _open(root, _DIRECTORY_FLAGS, None, root.name)
    try:
        for part in relative.parts[:-1]:
            inner = _open(part, _DIRECTORY_FLAGS, directory, str(relative))
            os.close(directory)
            directory = inner
        found = _open(relative.name, _FILE_FLAGS, directory, str(relative))
    finally:
        os.close(directory)
    return _regular(found, str(relative))


def regular_files(root: Path, skip_links: bool = False) -> list[PurePosixPath]:
    """Every regular file below `root`, relative to it, in a stable order (by path parts).
    A link (or a pipe, a socket, a device) below `root` is NotRegular, or passed over with
    `skip_links`; `root` itself must be a directory, not a link to one."""
    if not stat.S_ISDIR(os.lstat(root).st_mode):
        raise NotRegular(f"{root.name} is a link or not a directory")
    found: list[PurePosixPath] = []
    for directory, directories, files, directory_fd in os.fwalk(root, follow_symlinks=False):
        below = PurePosixPath(Path(directory).relative_to(root))
        for name in [*directories, *files]:
            mode = os.stat(name, dir_fd=directory_fd, follow_symlinks=False).st_mode
            if stat.S_ISREG(mode):
                found.append(below / name)
            elif not stat.S_ISDIR(mode) and not skip_links:
                raise NotRegular(f"{below / name} is a link or a special file")
    return sorted(found, key=lambda path: path.parts)


def _digest_into(digest: hashlib._Hash, handle: BinaryIO) -> int:
    size = 0
    with handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size


def file_checksum(path: Path) -> tuple[int, str]:
    """(bytes, SHA-256) of one regular file (not a link to one)."""
    digest = hashlib.sha256()
    size = _digest_into(digest, open_regular(path))
    return size, digest.hexdigest()


def tree_checksum(root: Path) -> tuple[int, str]:
    """(bytes, SHA-256) of every file below `root`, names included, in a stable order;
    NotRegular if anything below it is a link or a special file."""
    digest = hashlib.sha256()
    size = 0
    for relative in regular_files(root):
        digest.update(str(relative).encode() + b"\0")
        size += _digest_into(digest, open_below(root, relative))
    return size, digest.hexdigest()
