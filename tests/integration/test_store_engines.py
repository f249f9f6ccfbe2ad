"""The store on PostgreSQL and on MariaDB (what several control-plane nodes share), each
against a private server of its own: its schema and rows, its locks, its migrations, and
a failover that two nodes' task managers look for at the same moment, started once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import bare, rows
from tests.casts import Casts
from trove_svc.domain import catalog, replication_sets, status
from trove_svc.process import workers
from trove_svc.process.settings import Settings
from trove_svc.security import tokens
from trove_svc.store import locks, migrations
from trove_svc.store.db import open_store
from trove_svc.store.models import (
    Datastore,
    DatastoreVersion,
    Flavor,
    Instance,
    SchemaVersion,
    ServiceStatus,
    Task,
)
from trove_svc.taskmanager import failover

pytestmark = pytest.mark.integration

# What each engine calls a time's column type, and the 4-byte type stores were made with.
TIME_TYPES = {"postgresql": ("double precision", "real"), "mysql": ("double", "float")}


@pytest.fixture(params=["postgresql", "mariadb"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    with bare.store_server(request.param) as url:
        yield url


def test_schema_rows_workers_and_locks(store_url: str) -> None:
    database = open_store(store_url)
    try:
        catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
        catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
        assert Flavor.select().count() == 3 and Datastore.select().count() == 1
        Instance.create(
            id="i-1",
            name="n",
            project_id="p",
            datastore_version=DatastoreVersion.get(),
            flavor="2",
            volume_size=1,
            status=status.BUILD,
            access={"is_public": False},
            created_at=1,
            updated_at=1796564014.36,
        )
        assert Instance.get_by_id("i-1").access == {"is_public": False}
        # A time keeps its fraction of a second: leases and schedules compare them.
        assert Instance.get_by_id("i-1").updated_at == 1796564014.36
        token = tokens.issue("p", "u", False, now=1.0)
        identity = tokens.identify(token, now=2.0)
        assert identity is not None and identity.project_id == "p"
        assert tokens.identify(token + "x", now=2.0) is None
        # A worker says it is alive again and again: one row, seen.
        for seen_at in (100.0, 101.5):
            workers.seen("taskmanager:h:1:x", workers.TASKMANAGER, seen_at)
        assert workers.seen_since(workers.TASKMANAGER, 101.0) == 1
        with locks.exclusive(database, "placement"):
            assert Instance.select().count() == 1
    finally:
        database.close()


def test_a_store_with_4_byte_times_is_given_8_byte_ones(store_url: str) -> None:
    """A store made before times were 8 bytes (PostgreSQL's `real`, MySQL's `float`) is
    migrated when it is opened."""
    database = open_store(store_url)
    engine = store_url.partition(":")[0]
    wide, narrow = TIME_TYPES[engine]
    if engine == "postgresql":
        database.execute_sql(f"ALTER TABLE task ALTER COLUMN lease_expires_at TYPE {narrow}")
    else:
        database.execute_sql(f"ALTER TABLE task MODIFY lease_expires_at {narrow} NULL")
    SchemaVersion.update(version=migrations.LATEST - 1).execute()
    database.close()
    database = open_store(store_url)
    try:
        (kind,) = database.execute_sql(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = 'task' AND column_name = 'lease_expires_at'"
        ).fetchone()
        assert kind == wide
        assert SchemaVersion.get().version == migrations.LATEST
    finally:
        database.close()


def test_a_failover_looked_for_by_two_nodes_at_once_starts_once(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source silent past the failover limit while its replica is heard: two task
    managers (threads, each with its own connection) both find it failed before either
    acts; the store lets one start the eject."""
    now = 1796564014.36
    settings = Settings(state_dir=tmp_path / "state", clock=lambda: now, failover_after=5.0)
    database = open_store(store_url)
    try:
        catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
        long_ago = now - settings.failover_after - 1
        rows.instance(id="source", status_since=long_ago)
        rows.instance(id="replica", replica_of_id="source")
        ServiceStatus.create(instance="source", operating_status="SHUTDOWN", healthy_at=long_ago)
        ServiceStatus.create(instance="replica", operating_status="HEALTHY", healthy_at=now)
        casts = [Casts(), Casts()]
        started: list[list[str]] = []
        both_found = threading.Barrier(len(casts))
        find = replication_sets.failed_sources

        def found_then_wait(now: float, failover_after: float) -> list[Instance]:
            failed = find(now, failover_after)
            both_found.wait(10)
            return failed

        monkeypatch.setattr(replication_sets, "failed_sources", found_then_wait)

        def look(node_casts: Casts) -> None:
            with database.connection_context():
                started.append(failover.start_due(settings, node_casts))

        threads = [threading.Thread(target=look, args=(c,)) for c in casts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(len(ids) for ids in started) == [0, 1], started
        assert [t.action for t in Task.select()] == ["eject"]
        assert sum(len(c.task_ids) for c in casts) == 1
        assert Instance.get_by_id("source").status == status.EJECT
    finally:
        database.close()
