"""Which sources the task manager fails over by itself, and when a replication set is too
busy to move, against a real (SQLite) store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.casts import Casts
from trove_svc.domain import catalog, errors, replication_sets, status, tasks
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Instance, ServiceStatus, Task
from trove_svc.taskmanager import failover

NOW = 1000.0
AFTER = 10.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(state_dir=tmp_path, clock=lambda: NOW, failover_after=AFTER)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    yield settings
    database.close()


def _add(instance_id: str, healthy_at: float | None, replica_of: str | None = None) -> None:
    instance = Instance.create(
        id=instance_id,
        name=instance_id,
        project_id="p",
        datastore_version=DatastoreVersion.get(),
        flavor="1",
        volume_size=1,
        status=status.ACTIVE,
        status_since=NOW - 100,
        provisioned=True,
        replica_of_id=replica_of,
        created_at=1,
        updated_at=1,
    )
    ServiceStatus.create(instance=instance, operating_status="HEALTHY", healthy_at=healthy_at)


def _failed(settings: Settings) -> list[str]:
    return [row.id for row in replication_sets.failed_sources(NOW, settings.failover_after)]


def test_a_silent_source_with_a_heard_replica_is_failed_over(store: Settings, casts: Casts) -> None:
    _add("src", NOW - AFTER - 1)
    _add("rep", NOW - 1, replica_of="src")
    assert _failed(store) == ["src"]
    started = failover.start_due(store, casts)
    assert len(started) == 1
    assert Instance.get_by_id("src").status == status.EJECT
    task = Task.get_by_id(started[0])
    assert (task.action, task.requested_by) == ("eject", failover.REQUESTED_BY)
    assert casts.task_ids == started  # cast to the task managers, as a request's eject is
    assert failover.start_due(store, casts) == []  # one failover per failure
    assert casts.task_ids == started


def test_a_failover_the_bus_cannot_take_is_tried_again(store: Settings, casts: Casts) -> None:
    _add("src", NOW - AFTER - 1)
    _add("rep", NOW - 1, replica_of="src")
    casts.refuse_after = 0
    with pytest.raises(errors.ServiceUnavailable):
        failover.start_due(store, casts)
    assert Instance.get_by_id("src").status == status.ACTIVE
    assert Task.select().count() == 0
    casts.refuse_after = None
    assert len(failover.start_due(store, casts)) == 1


@pytest.mark.parametrize(
    ("source_healthy", "replica_healthy", "why"),
    [
        (NOW - AFTER + 1, NOW - 1, "the source was healthy within the limit"),
        (NOW - AFTER - 1, NOW - AFTER - 1, "no replica is heard either: the control plane"),
        (None, NOW - 1, "the source was never healthy (still being built)"),
    ],
)
def test_no_failover_when(
    store: Settings, source_healthy: float | None, replica_healthy: float, why: str
) -> None:
    _add("src", source_healthy)
    _add("rep", replica_healthy, replica_of="src")
    assert _failed(store) == [], why


def test_no_failover_right_after_a_restart_or_while_the_set_is_busy(
    store: Settings, casts: Casts
) -> None:
    _add("src", NOW - AFTER - 1)
    _add("rep", NOW - 1, replica_of="src")
    Instance.update(status_since=NOW - 2).where(Instance.id == "src").execute()
    assert _failed(store) == []  # ACTIVE again only just: a heartbeat may be late
    Instance.update(status_since=NOW - 100).where(Instance.id == "src").execute()
    tasks.record("t-1", "rep", "p", "restart", "u", "", NOW)
    assert failover.start_due(store, casts) == []
    with pytest.raises(errors.Conflict, match="busy"):
        replication_sets.require_set_idle(Instance.get_by_id("src"))


def test_failover_can_be_turned_off(store: Settings, casts: Casts) -> None:
    _add("src", NOW - AFTER - 1)
    _add("rep", NOW - 1, replica_of="src")
    assert failover.start_due(store.with_overrides(failover_after=0.0), casts) == []


@pytest.mark.parametrize("action", ["backup", "verify_backup", "delete_backup"])
def test_a_backup_on_the_source_does_not_hold_off_failover(
    store: Settings, casts: Casts, action: str
) -> None:
    """A schedule's backups, checks and prunes run often and long; a source that dies
    during one is failed over all the same."""
    _add("src", NOW - AFTER - 1)
    _add("rep", NOW - 1, replica_of="src")
    if action == "backup":
        Instance.update(status=status.BACKUP).where(Instance.id == "src").execute()
    tasks.record("t-1", "src", "p", action, "schedule nightly", "", NOW - 50)
    assert _failed(store) == ["src"]
    assert len(failover.start_due(store, casts)) == 1
    assert Instance.get_by_id("src").status == status.EJECT


@pytest.mark.parametrize(
    ("action", "on", "words"),
    [
        ("promote", "rep", "being switched over (promote_to_replica_source)"),
        ("eject", "src", "being failed over (eject_replica_source)"),
        ("configure_set", "src", "being reconfigured"),
    ],
)
def test_no_member_is_deleted_while_the_set_is_changed(
    store: Settings, action: str, on: str, words: str
) -> None:
    _add("src", NOW)
    _add("rep", NOW, replica_of="src")
    _add("other", NOW, replica_of="src")
    tasks.record("t-1", on, "p", action, "u", "", NOW)
    for member in ("src", "rep", "other"):
        with pytest.raises(errors.Conflict, match=re.escape(words)) as refused:
            replication_sets.require_no_set_operation(Instance.get_by_id(member))
        assert f"task t-1 on {on}" in refused.value.message
    Task.update(state=tasks.TaskState.SUCCEEDED).where(Task.id == "t-1").execute()
    replication_sets.require_no_set_operation(Instance.get_by_id("rep"))


def test_a_members_own_task_does_not_hold_its_set(store: Settings) -> None:
    _add("src", NOW)
    _add("rep", NOW, replica_of="src")
    tasks.record("t-1", "src", "p", "backup", "u", "", NOW)
    tasks.record("t-2", "rep", "p", "configure", "u", "", NOW)
    replication_sets.require_no_set_operation(Instance.get_by_id("rep"))
