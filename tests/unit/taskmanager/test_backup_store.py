"""What the task manager does to a backup's files (check, restore from, remove) it does at
paths derived from the backup's ids, whatever the store's `location` says (a forged report
once put "/" there), and never through a link the instance's account put in its
repository."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import Backup, Instance, Task
from trove_svc.taskmanager import backup_store, restore_inputs
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.leases import Lease

LABEL = "20261126-214130F"


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    found = Settings(state_dir=tmp_path / "state", clock=lambda: 100.0)
    found.backups_dir.mkdir(parents=True)
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield found
    database.close()


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """What lies outside every repository: it must survive whatever is done to backups."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("another project's data")
    return outside


def _backup(datastore: str, checksum: str | None, **fields: Any) -> Backup:
    values: dict[str, Any] = {
        "id": "b-1",
        "name": "b",
        "project_id": "p",
        "instance_id": "i-1",
        "datastore": datastore,
        "datastore_version": "1",
        "state": "COMPLETED",
        "checksum": checksum,
        "created_at": 1.0,
        "updated_at": 1.0,
        **fields,
    }
    return Backup.create(**values)


def _file_backup(settings: Settings, forged_location: str) -> Backup:
    repository = settings.backups_dir / "i-1"
    repository.mkdir()
    (repository / "b-1.tar.zst").write_bytes(b"snapshot")
    checksum = hashlib.sha256(b"snapshot").hexdigest()
    return _backup("redis", checksum, label="b-1", location=forged_location)


def _set_backup(settings: Settings, label: str = LABEL, **fields: Any) -> Backup:
    backup_set = settings.backups_dir / "i-1" / "backup" / "trove" / LABEL
    backup_set.mkdir(parents=True)
    (backup_set / "backup.manifest").write_text("manifest")
    checksum = hashlib.sha256(b"backup.manifest\0manifest").hexdigest()
    return _backup("postgresql", checksum, label=label, **fields)


def test_the_last_backup_takes_its_repository_and_nothing_a_link_points_to(
    settings: Settings, canary: Path
) -> None:
    backup = _file_backup(settings, forged_location=str(canary))
    repository = settings.backups_dir / "i-1"
    (repository / "binlogs").symlink_to(canary)
    (repository / "keep").symlink_to(canary / "keep")
    backup_store.remove(settings.backups_dir, backup, settings.state_dir / "scratch", last=True)
    assert not os.path.lexists(repository)
    assert (canary / "keep").read_text() == "another project's data"


def test_a_backup_file_is_removed_where_its_id_says(settings: Settings, canary: Path) -> None:
    backup = _file_backup(settings, forged_location=str(canary / "keep"))
    backup_store.remove(settings.backups_dir, backup, settings.state_dir / "scratch", last=False)
    assert not (settings.backups_dir / "i-1" / "b-1.tar.zst").exists()
    assert (canary / "keep").exists()


def test_a_repository_that_is_a_link_is_left_alone(settings: Settings, canary: Path) -> None:
    (settings.backups_dir / "i-1").symlink_to(canary)
    backup = _backup("redis", "0" * 64, label="b-1")
    with pytest.raises(backup_store.NotRemoved, match="link"):
        backup_store.remove(settings.backups_dir, backup, settings.state_dir / "s", last=True)
    assert (canary / "keep").exists()


def test_a_set_with_a_label_not_pgbackrests_is_neither_checked_nor_removed(
    settings: Settings,
) -> None:
    backup = _set_backup(settings, label="../../..")
    repository = settings.backups_dir / "i-1"
    with pytest.raises(backup_store.BackupDamaged, match="label"):
        backup_store.check(backup, repository)
    with pytest.raises(backup_store.NotRemoved, match="label"):
        backup_store.remove(settings.backups_dir, backup, settings.state_dir / "s", last=False)
    assert repository.exists()


def test_a_set_is_checked_and_a_link_in_it_fails_the_check(
    settings: Settings, canary: Path
) -> None:
    backup = _set_backup(settings)
    repository = settings.backups_dir / "i-1"
    backup_store.check(backup, repository)
    (repository / "backup" / "trove" / LABEL / "pg_control").symlink_to(canary / "keep")
    with pytest.raises(backup_store.BackupDamaged, match="failed its checksum"):
        backup_store.check(backup, repository)


def test_a_file_backup_that_is_a_link_fails_the_check(settings: Settings, canary: Path) -> None:
    backup = _file_backup(settings, forged_location="/")
    artifact = settings.backups_dir / "i-1" / "b-1.tar.zst"
    artifact.unlink()
    artifact.symlink_to(canary / "keep")
    with pytest.raises(backup_store.BackupDamaged, match="failed its checksum"):
        backup_store.check(backup, settings.backups_dir / "i-1")


def _restoring(settings: Settings, backup: Backup) -> dict[str, Any]:
    task = Task.create(
        id="t-1",
        instance_id="i-2",
        project_id="p",
        action="create",
        created_at=1.0,
        args={"restore": {"backup_id": backup.id}},
    )
    none = cast(Any, None)
    deps = FlowDeps(settings, none, none, none, none, none)
    claim = Claim(task, "tm-1", Lease(task.id, 31.0, 2.0, lambda: 10.0))
    # A target on this machine reads the repository where it is.
    return restore_inputs.restore_vars(deps, claim, Instance(id="i-2", provider="local"))


@pytest.mark.parametrize("forged", ["/", "../..", "/var/lib"])
def test_a_restore_reads_the_derived_repository(settings: Settings, forged: str) -> None:
    backup = _set_backup(settings, location=forged, details={"stanza": "../../.."})
    assert _restoring(settings, backup) == {
        "postgresql_restore": {
            "repository": str(settings.backups_dir / "i-1"),
            "stanza": "trove",
            "set": LABEL,
            "target_time": "",
        }
    }


def test_a_restore_of_a_file_reads_the_file_its_id_names(settings: Settings) -> None:
    backup = _file_backup(settings, forged_location="/etc/shadow")
    assert _restoring(settings, backup) == {
        "redis_restore": {"artifact": str(settings.backups_dir / "i-1" / "b-1.tar.zst")}
    }
