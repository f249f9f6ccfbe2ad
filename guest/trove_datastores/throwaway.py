"""A throwaway server of a datastore version, to ask the engine itself about its
parameters: started in a private temporary directory, on a Unix socket only (no TCP port,
so it never meets a system service), as an unprivileged account, and removed after."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Servers refuse to run as root; a root caller runs them as this account.
UNPRIVILEGED = "nobody"


def as_server_account(argv: list[str]) -> list[str]:
    return ["runuser", "-u", UNPRIVILEGED, "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    """A private directory the server's account owns, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="trove-describe-"))
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam(UNPRIVILEGED)
            os.chown(path, account.pw_uid, account.pw_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def run(argv: list[str], timeout: float = 120) -> None:
    done = subprocess.run(
        as_server_account(argv), capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} failed: {done.stderr.strip()[-500:]}")


@contextlib.contextmanager
def server(argv: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    """A server process for the block's length; stopped (and waited for) after."""
    process = subprocess.Popen(
        as_server_account(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def until_ready(connect: Callable[[], T], process: subprocess.Popen[bytes], limit: float = 60) -> T:
    """`connect()`'s result once it stops raising; fails if the server exits or `limit` passes."""
    deadline = time.monotonic() + limit
    while True:
        try:
            return connect()
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
