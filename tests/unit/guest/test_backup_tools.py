"""What a backup records of the tool that made it."""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from pathlib import Path

import pytest

from trove_guest.backups import compressed_to, rate_limit, tool_version
from trove_wire import datastores


def test_a_version_said_on_stdout_or_on_stderr_is_kept() -> None:
    assert tool_version(["sh", "-c", "echo 'pgBackRest 2.54'"], "pgbackrest") == "pgBackRest 2.54"
    # mariadb-backup says its version on stderr.
    said = tool_version(["sh", "-c", "echo 'mariadb-backup Ver 10.11' >&2"], "mariadb-backup")
    assert said == "mariadb-backup Ver 10.11"
    assert tool_version(["true"], "quiet-tool") == "quiet-tool"


def test_mariadb_backups_own_version_is_read() -> None:
    # The set-up installs mariadb-backup (scripts/bootstrap.sh).
    assert tool_version(["mariadb-backup", "--version"], "mariadb-backup").startswith(
        "mariadb-backup based on MariaDB server"
    )


@pytest.mark.parametrize("spec", datastores.REGISTRY.values(), ids=lambda s: s.name)
def test_each_datastore_names_a_backup_engine_that_has_the_engines_calls(
    spec: datastores.DatastoreSpec,
) -> None:
    module_name, class_name = spec.backup_engine.split(":")
    engine = getattr(importlib.import_module(module_name), class_name)
    for call in ("backup", "remove", "archive_logs", "remove_from"):
        assert callable(getattr(engine, call, None)), f"{spec.backup_engine} has no {call}"


def test_a_backup_stream_is_written_no_faster_than_its_rate_limit(tmp_path: Path) -> None:
    """zstd of 4 MiB of random bytes is about 4 MiB: at 2 MiB a second it takes over a
    second and a half, and what is written is whole (its checksum is the file's)."""
    source = tmp_path / "source"
    source.write_bytes(os.urandom(4 << 20))
    target = tmp_path / "made.zst"
    with source.open("rb") as stream:
        started = time.monotonic()
        size, checksum = compressed_to(stream, target, max_rate=2 << 20)
        took = time.monotonic() - started
    assert size == target.stat().st_size > 4 << 20
    assert checksum == hashlib.sha256(target.read_bytes()).hexdigest()
    assert took >= size / (2 << 20) - 0.3, took
    with source.open("rb") as stream:
        started = time.monotonic()
        compressed_to(stream, tmp_path / "fast.zst")
        assert time.monotonic() - started < took / 2


@pytest.mark.parametrize(
    ("settings", "limit"), [({}, 0), ({"max_rate": 0}, 0), ({"max_rate": 65536}, 65536)]
)
def test_a_guest_reads_its_backup_rate_limit_from_its_settings(
    settings: dict[str, int], limit: int
) -> None:
    assert rate_limit(settings) == limit
