"""A file in a tenant's directory is read only as the regular file the tenant's account
made there, only its tail, and never through a link, whatever the tenant planted."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from trove_svc.security import tenant_files

SECRET = "the-control-plane-secret"
NOBODY = 65534


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    """An instance's directory with its datastore's directory and log in it, beside a
    secret of the control plane's."""
    (tmp_path / "service.key").write_text(SECRET + "\n")
    (tmp_path / "instances" / "i-1" / "postgresql").mkdir(parents=True)
    (tmp_path / "instances" / "i-1" / "postgresql" / "postgresql.log").write_text("LOG:  up\n")
    return tmp_path / "instances" / "i-1"


def _log_link_to(target: str) -> Callable[[Path], None]:
    def plant(instance: Path) -> None:
        log = instance / "postgresql" / "postgresql.log"
        log.unlink()
        log.symlink_to(target)

    return plant


def _secret_link(instance: Path) -> None:
    _log_link_to(str(instance.parent.parent / "service.key"))(instance)


def _directory_link(instance: Path) -> None:
    """The datastore's directory itself replaced by a link to one holding a like-named log."""
    elsewhere = instance.parent.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "postgresql.log").write_text(SECRET + "\n")
    (instance / "postgresql").rename(instance / "old")
    (instance / "postgresql").symlink_to(elsewhere)


def _fifo(instance: Path) -> None:
    log = instance / "postgresql" / "postgresql.log"
    log.unlink()
    os.mkfifo(log)


def _hard_link(instance: Path) -> None:
    log = instance / "postgresql" / "postgresql.log"
    log.unlink()
    os.link(instance.parent.parent / "service.key", log)


def _another_accounts_file(instance: Path) -> None:
    log = instance / "postgresql" / "postgresql.log"
    log.write_text(SECRET + "\n")
    os.chown(log, NOBODY, NOBODY)


def _directory_where_the_file_was(instance: Path) -> None:
    log = instance / "postgresql" / "postgresql.log"
    log.unlink()
    log.mkdir()


PLANTED = {
    "link to a secret file": _secret_link,
    "link to /dev/zero": _log_link_to("/dev/zero"),
    "link to /proc/self/environ": _log_link_to("/proc/self/environ"),
    "link in place of a directory": _directory_link,
    "FIFO": _fifo,
    "hard link": _hard_link,
    "another account's file": _another_accounts_file,
    "directory": _directory_where_the_file_was,
}


def _read_log(instance: Path, limit: int = 4096, start: int = 0) -> bytes:
    return tenant_files.read_tail(
        instance.parent, "i-1/postgresql/postgresql.log", limit=limit, start=start
    )


@pytest.mark.parametrize("plant", PLANTED.values(), ids=PLANTED.keys())
def test_what_the_tenant_planted_is_refused_unread(
    instance: Path, plant: Callable[[Path], None]
) -> None:
    plant(instance)
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(_read_log(instance))
        except OSError as exc:
            outcome.append(exc)

    # A FIFO opened for reading would wait for a writer forever; /dev/zero never ends.
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    assert not reader.is_alive(), "the read did not return"
    assert len(outcome) == 1 and isinstance(outcome[0], tenant_files.UnsafeFile), outcome
    with pytest.raises(tenant_files.UnsafeFile):
        tenant_files.size(instance.parent, "i-1/postgresql/postgresql.log")


def test_the_instance_directory_itself_may_not_be_a_link(instance: Path) -> None:
    instance.rename(instance.parent / "i-real")
    instance.symlink_to(instance.parent / "i-real")
    with pytest.raises(tenant_files.UnsafeFile):
        _read_log(instance)


def test_a_plain_file_is_read_from_its_tail_within_the_limit(instance: Path) -> None:
    log = instance / "postgresql" / "postgresql.log"
    log.write_bytes(b"".join(b"line %d\n" % n for n in range(1000)))
    size = log.stat().st_size

    assert tenant_files.size(instance.parent, "i-1/postgresql/postgresql.log") == size
    assert _read_log(instance, limit=16) == b"ne 998\nline 999\n"
    assert _read_log(instance, limit=100_000, start=size - 9) == b"line 999\n"
    assert _read_log(instance, start=size + 10) == b""


def test_a_huge_file_costs_no_more_than_the_limit(instance: Path) -> None:
    log = instance / "postgresql" / "postgresql.log"
    with log.open("r+b") as handle:
        handle.truncate(8 * 1024**3)  # sparse: 8 GiB on paper, nothing on disk
    assert len(_read_log(instance, limit=64 * 1024)) == 64 * 1024


def test_a_missing_file_is_missing_not_unsafe(instance: Path) -> None:
    (instance / "postgresql" / "postgresql.log").unlink()
    with pytest.raises(FileNotFoundError) as raised:
        _read_log(instance)
    assert not isinstance(raised.value, tenant_files.UnsafeFile)


@pytest.mark.parametrize("escaping", ["../service.key", "/etc/passwd", ""])
def test_only_paths_below_the_directory_are_taken(instance: Path, escaping: str) -> None:
    with pytest.raises(ValueError):
        tenant_files.read_tail(instance, escaping, limit=10)
