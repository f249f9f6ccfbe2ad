"""Every waiting state has its limit: past it, the instance is in ERROR with a fault that
names the state and the limit, and its open tasks fail (a backup's instance goes back to
ACTIVE instead, its backup FAILED), against a real (SQLite) store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trove_svc.domain import catalog, status, tasks, wait_limits
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import Backup, DatastoreVersion, Instance, Task

NOW = 10_000.0


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    chosen = Settings(
        state_dir=tmp_path,
        clock=lambda: NOW,
        limit_build=60,
        limit_reboot=70,
        limit_resize=80,
        limit_shutdown=90,
        limit_replication=100,
        limit_backup=110,
        cleanup_timeout=5,
        limit_queued=1000,
    )
    database = open_store(chosen.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    yield chosen
    database.close()


def _waiting(state: str, since: float, instance_id: str = "i-1") -> str:
    Instance.create(
        id=instance_id,
        name=instance_id,
        project_id="p",
        datastore_version=DatastoreVersion.get(),
        flavor="1",
        volume_size=1,
        status=state,
        status_since=since,
        provisioned=True,
        created_at=1,
        updated_at=1,
    )
    tasks.record(f"t-{instance_id}", instance_id, "p", "some-action", "alice", "", since)
    return instance_id


@pytest.mark.parametrize(
    ("state", "limit", "named"),
    [
        (status.BUILD, 60, "BUILD"),
        (status.REBOOT, 70, "REBOOT"),
        (status.RESIZE, 80, "RESIZE"),
        (status.SHUTDOWN, 90, "SHUTDOWN"),
        (status.PROMOTE, 100, "REPLICATION"),
        (status.EJECT, 100, "REPLICATION"),
        (status.DETACH, 100, "REPLICATION"),
    ],
)
def test_a_wait_past_its_limit_ends_in_error_naming_it(
    settings: Settings, state: str, limit: int, named: str
) -> None:
    overdue = _waiting(state, since=NOW - limit - 1)
    in_time = _waiting(state, since=NOW - limit + 1, instance_id="i-2")

    assert wait_limits.sweep(settings) == 1
    row = Instance.get_by_id(overdue)
    assert row.status == status.ERROR
    assert row.fault_message == (
        f"The instance stayed {state} for more than {limit} s (TROVE_SVC_LIMIT_{named}); "
        "trove-svc gave up waiting."
    )
    assert Task.get_by_id(f"t-{overdue}").state == tasks.TaskState.FAILED
    assert Instance.get_by_id(in_time).status == state  # still within its limit
    assert Task.get_by_id(f"t-{in_time}").state == tasks.TaskState.QUEUED


def test_a_backup_past_its_limit_fails_and_its_instance_is_active_again(
    settings: Settings,
) -> None:
    instance_id = _waiting(status.BACKUP, since=NOW - 110 - 5 - 1)
    Backup.create(
        id="b-1",
        name="b",
        project_id="p",
        instance_id=instance_id,
        datastore="postgresql",
        datastore_version="15",
        state="BUILDING",
        created_at=1,
        updated_at=1,
    )
    assert wait_limits.sweep(settings) == 1
    assert Instance.get_by_id(instance_id).status == status.ACTIVE
    backup = Backup.get_by_id("b-1")
    assert backup.state == "FAILED" and "TROVE_SVC_LIMIT_BACKUP" in backup.fail_reason


def test_a_backup_past_its_limit_settles_what_its_tasks_left(settings: Settings) -> None:
    """Made and checksummed already: COMPLETED; its delete ended: COMPLETED again, still
    deletable; still being made: FAILED."""
    instance_id = _waiting(status.BACKUP, since=NOW - 110 - 5 - 1)
    for backup_id, state, checksum in (
        ("b-1", "BUILDING", ""),
        ("b-2", "SAVING", "sha256:0f"),
        ("b-3", "DELETING", "sha256:0e"),
    ):
        Backup.create(
            id=backup_id,
            name=backup_id,
            project_id="p",
            instance_id=instance_id,
            datastore="postgresql",
            datastore_version="15",
            state=state,
            checksum=checksum,
            created_at=1,
            updated_at=1,
        )
    assert wait_limits.sweep(settings) == 1
    states = {b.id: b.state for b in Backup.select()}
    assert states == {"b-1": "FAILED", "b-2": "COMPLETED", "b-3": "COMPLETED"}
