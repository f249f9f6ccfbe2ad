"""Reading a file in a directory a tenant controls: no link followed, never unbounded.

An instance's directory is its tenant's: a tenant with root on its datastore runs commands
as the instance's account, so any name below that directory may have become a link (to
another account's file, to /proc/self/environ, to /dev/zero), a FIFO or a hard link since
the control plane made it. Every read of the control plane there goes through here.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Opening a FIFO for reading waits for a writer unless it is non-blocking; it is then
# refused like any other file that is not a regular one.
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# What opening with O_NOFOLLOW says of a link (ELOOP), of a file where a directory should
# be (ENOTDIR), and of a socket (ENXIO).
_NOT_WHAT_WAS_MADE = {errno.ELOOP, errno.ENOTDIR, errno.ENXIO}


class UnsafeFile(OSError):
    """A name below the directory is a link, or not a regular file of the directory's
    owner with a single link."""


@contextmanager
def _opened(top: Path, relative: PurePath | str) -> Iterator[tuple[int, os.stat_result]]:
    """`relative` below `top` opened for reading, every name below `top` taken as it is."""
    parts = PurePath(relative).parts
    if not parts or PurePath(relative).is_absolute() or ".." in parts:
        raise ValueError(f"{relative!s} is not a path below a directory")
    directory = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in parts[:-1]:
            inner = os.open(name, _DIRECTORY, dir_fd=directory)
            os.close(directory)
            directory = inner
        owner = os.fstat(directory).st_uid
        handle = os.open(parts[-1], _FILE, dir_fd=directory)
    except OSError as exc:
        if exc.errno in _NOT_WHAT_WAS_MADE:
            raise UnsafeFile(exc.errno, f"{relative!s} below {top} is not what was made") from exc
        raise
    finally:
        os.close(directory)
    try:
        found = os.fstat(handle)
        # A hard link may be another account's file (protected_hardlinks off, or a file
        # that was once the tenant's to link): one link, the directory owner's, or nothing.
        if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1 or found.st_uid != owner:
            raise UnsafeFile(errno.EPERM, f"{relative!s} below {top} is not a plain file")
        yield handle, found
    finally:
        os.close(handle)


def size(top: Path, relative: PurePath | str) -> int:
    """The size of the regular file `relative` below `top` (OSError if it is not one)."""
    with _opened(top, relative) as (_, found):
        return found.st_size


def read_tail(top: Path, relative: PurePath | str, limit: int, start: int = 0) -> bytes:
    """At most the last `limit` bytes of the regular file `relative` below `top`, none of
    those before offset `start` (OSError if it is not one)."""
    with _opened(top, relative) as (handle, found):
        begin = max(start, found.st_size - limit, 0)
        return os.pread(handle, max(0, min(limit, found.st_size - begin)), begin)
