"""A live instance's guest removes its own backups, as the account that owns the
repository: the file its id names (nothing else), or a set under a label of pgBackRest's
grammar (a label that is not one is refused before any tool runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trove_guest.backups import Engine
from trove_guest.backups.mariadb import MariaDBBackup
from trove_guest.backups.postgresql import PgBackRest
from trove_guest.backups.redis import RedisSnapshot
from trove_wire.datastores import mariadb, redis
from trove_wire.datastores.base import BackupNaming

BACKUP_ID = "0d1c7a52-58e5-4b7e-9d55-2f1f0e0c7c11"
OTHER_ID = "6a0f3c1e-2b7d-4c55-8e21-93d0c4a1b2f0"


def _file_engines(repository: Path) -> list[tuple[Engine, BackupNaming]]:
    connection = {"host": "127.0.0.1", "port": 1, "user": "x", "password": "x"}
    settings = {"dir": str(repository), "socket": "/nowhere", "data_dir": "/nowhere"}
    return [
        (MariaDBBackup(settings, connection), mariadb.BACKUP_NAMING),
        (RedisSnapshot(settings, connection), redis.BACKUP_NAMING),
    ]


@pytest.mark.parametrize("which", [0, 1])
def test_the_file_the_id_names_is_removed_and_nothing_else(tmp_path: Path, which: int) -> None:
    engine, naming = _file_engines(tmp_path)[which]
    for backup_id in (BACKUP_ID, OTHER_ID):
        (tmp_path / naming.file_name(backup_id)).write_bytes(b"x")
    engine.remove(BACKUP_ID, "../../etc/passwd")
    engine.remove(BACKUP_ID, "")  # gone already: no error
    assert [p.name for p in tmp_path.iterdir()] == [naming.file_name(OTHER_ID)]


@pytest.mark.parametrize("label", ["../../x", "20261126-214130F/..", "latest", ""])
def test_a_label_that_is_not_pgbackrests_is_refused_before_any_tool_runs(
    tmp_path: Path, label: str
) -> None:
    engine = PgBackRest(
        {"pgbackrest_config": str(tmp_path / "none.conf"), "stanza": "trove", "dir": str(tmp_path)},
        {},
    )
    with pytest.raises(ValueError):
        engine.remove(BACKUP_ID, label)
