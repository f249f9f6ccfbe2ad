"""A backup is removed by its datastore's backup engine: by its live instance's guest (as
the account that owns the repository), or from a repository whose instance is gone (by
the control plane). Either way only the file its id names goes (nothing else), or a set
under a label of pgBackRest's grammar (a label that is not one is refused before any tool
runs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trove_datastores.base import BackupLayout
from trove_datastores.postgresql.backup import PgBackRest, give_back
from trove_guest.backups import Engine, engine_class, load_engine
from trove_wire import datastores

BACKUP_ID = "0d1c7a52-58e5-4b7e-9d55-2f1f0e0c7c11"
OTHER_ID = "6a0f3c1e-2b7d-4c55-8e21-93d0c4a1b2f0"
# The datastores whose backups are each a file of its own.
FILE_BACKUPS = sorted(
    spec.name
    for spec in datastores.REGISTRY.values()
    if spec.capabilities.backups and spec.capabilities.backup_layout == BackupLayout.FILE
)


def _live_engine(datastore: str, repository: Path) -> Engine:
    connection = {"host": "127.0.0.1", "port": 1, "user": "x", "password": "x"}
    spec = datastores.get(datastore)
    return load_engine(datastore, spec.backup_settings("/nowhere", str(repository)), connection)


def _two_backups(datastore: str, repository: Path) -> str:
    naming = datastores.get(datastore).backup_naming
    for backup_id in (BACKUP_ID, OTHER_ID):
        (repository / naming.file_name(backup_id)).write_bytes(b"x")
    return naming.file_name(OTHER_ID)


@pytest.mark.parametrize("datastore", FILE_BACKUPS)
def test_a_guest_removes_the_file_the_id_names_and_nothing_else(
    tmp_path: Path, datastore: str
) -> None:
    other = _two_backups(datastore, tmp_path)
    engine = _live_engine(datastore, tmp_path)
    engine.remove(BACKUP_ID, "../../etc/passwd")
    engine.remove(BACKUP_ID, "")  # gone already: no error
    assert [p.name for p in tmp_path.iterdir()] == [other]


@pytest.mark.parametrize("datastore", FILE_BACKUPS)
def test_the_file_the_id_names_is_removed_from_a_repository_without_its_instance(
    tmp_path: Path, datastore: str
) -> None:
    other = _two_backups(datastore, tmp_path)
    remove_from = engine_class(datastore).remove_from
    remove_from(tmp_path, BACKUP_ID, "../../etc/passwd", tmp_path / "scratch")
    remove_from(tmp_path, BACKUP_ID, "", tmp_path / "scratch")
    assert [p.name for p in tmp_path.iterdir()] == [other]
    with pytest.raises(ValueError, match="not an id"):
        remove_from(tmp_path, "../" + OTHER_ID, "", tmp_path / "scratch")


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
    with pytest.raises(ValueError):
        PgBackRest.remove_from(tmp_path, BACKUP_ID, label, tmp_path / "scratch")
    assert not (tmp_path / "scratch").exists()


def test_a_repository_goes_back_to_its_owner_link_by_link(tmp_path: Path) -> None:
    """After `pgbackrest expire` (run as the service's account) the repository is given
    back to its owner; a link in it changes owner itself, never what it points to."""
    canary = tmp_path / "outside"
    canary.mkdir()
    (canary / "keep").write_text("another project's data")
    repository = tmp_path / "repository"
    (repository / "backup").mkdir(parents=True)
    (repository / "backup" / "backup.info").write_text("info")
    (repository / "backup" / "elsewhere").symlink_to(canary)
    (repository / "keep").symlink_to(canary / "keep")
    os.chown(repository, 4242, 4242)
    before = os.stat(canary / "keep")
    give_back(repository)
    assert os.stat(repository / "backup" / "backup.info").st_uid == 4242
    assert os.lstat(repository / "keep").st_uid == 4242
    after = os.stat(canary / "keep")
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert os.stat(canary).st_uid == before.st_uid
