"""What a backup records of the tool that made it."""

from __future__ import annotations

import importlib

import pytest

from trove_guest.backups import tool_version
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
    assert callable(engine.backup) and callable(engine.archive_logs)
