"""The store on PostgreSQL (the multi-host setting), against a private cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import bare
from trove_datastores.postgresql import spec as postgresql
from trove_svc.domain import catalog, status
from trove_svc.security import tokens
from trove_svc.store import migrations
from trove_svc.store.db import open_store
from trove_svc.store.models import (
    Datastore,
    DatastoreVersion,
    Flavor,
    Instance,
    SchemaVersion,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster() -> Iterator[bare.BareCluster]:
    found = postgresql.discover()
    assert found is not None, "no PostgreSQL binaries on this host"
    cluster = bare.BareCluster(found.bin_dir)
    cluster.start()
    yield cluster
    cluster.stop()


def test_schema_and_rows_on_postgresql(cluster: bare.BareCluster) -> None:
    database = open_store(f"postgresql://admin@127.0.0.1:{cluster.port}/postgres")
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
    finally:
        database.close()


def test_a_store_with_4_byte_times_is_given_8_byte_ones(cluster: bare.BareCluster) -> None:
    """A store made before times were 8 bytes (PostgreSQL's `real`) is migrated."""
    url = f"postgresql://admin@127.0.0.1:{cluster.port}/postgres"
    database = open_store(url)
    database.execute_sql("ALTER TABLE task ALTER COLUMN lease_expires_at TYPE real")
    SchemaVersion.update(version=migrations.LATEST - 1).execute()
    database.close()
    database = open_store(url)
    try:
        (kind,) = database.execute_sql(
            "SELECT data_type FROM information_schema.columns"
            " WHERE table_name = 'task' AND column_name = 'lease_expires_at'"
        ).fetchone()
        assert kind == "double precision"
        assert SchemaVersion.get().version == migrations.LATEST
    finally:
        database.close()
