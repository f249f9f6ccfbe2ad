"""A store made by the first release (no schema version) is brought up to date on open,
and keeps its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import peewee
import pytest

from trove_svc.store import migrations
from trove_svc.store.db import open_store
from trove_svc.store.models import Backup, Instance, SchemaVersion, Task, Token

FIRST_RELEASE = """
CREATE TABLE datastore (id VARCHAR(36) PRIMARY KEY, name VARCHAR(64) NOT NULL,
  default_version_id VARCHAR(36));
CREATE TABLE datastore_version (id VARCHAR(36) PRIMARY KEY, datastore_id VARCHAR(36) NOT NULL,
  name VARCHAR(64) NOT NULL, packages VARCHAR(255) NOT NULL, bin_dir VARCHAR(255) NOT NULL,
  active INTEGER NOT NULL);
CREATE TABLE flavor (id VARCHAR(36) PRIMARY KEY, name VARCHAR(64) NOT NULL, ram INTEGER NOT NULL,
  vcpus INTEGER NOT NULL, disk INTEGER NOT NULL);
CREATE TABLE instance (id VARCHAR(36) PRIMARY KEY, name VARCHAR(255) NOT NULL,
  project_id VARCHAR(64) NOT NULL, datastore_version_id VARCHAR(36) NOT NULL,
  flavor_id VARCHAR(36) NOT NULL, volume_size INTEGER NOT NULL, status VARCHAR(32) NOT NULL,
  provisioned INTEGER NOT NULL, current_step VARCHAR(255), host VARCHAR(255), port INTEGER,
  access TEXT NOT NULL, fault_message TEXT, fault_details TEXT, fault_at REAL,
  created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE task (id VARCHAR(36) PRIMARY KEY, instance_id VARCHAR(36) NOT NULL,
  project_id VARCHAR(64) NOT NULL, action VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL,
  requested_by VARCHAR(255) NOT NULL, request_id VARCHAR(64) NOT NULL, playbook VARCHAR(255),
  rc INTEGER, failed_step VARCHAR(255), message TEXT, artifact_dir VARCHAR(1024),
  created_at REAL NOT NULL, started_at REAL, finished_at REAL);
CREATE TABLE token (token_hash VARCHAR(64) PRIMARY KEY, project_id VARCHAR(64) NOT NULL,
  user VARCHAR(255) NOT NULL, is_admin INTEGER NOT NULL, created_at REAL NOT NULL,
  expires_at REAL);
INSERT INTO token VALUES ('abc', 'p', 'alice', 0, 1.0, NULL);
INSERT INTO datastore VALUES ('d', 'postgresql', 'v');
INSERT INTO datastore_version VALUES ('v', 'd', '15', '', '/usr/bin', 1);
INSERT INTO flavor VALUES ('1', 'small', 512, 1, 0);
INSERT INTO instance VALUES ('i-1', 'old', 'p', 'v', '1', 1, 'ACTIVE', 1, NULL, '127.0.0.1',
  21000, '{}', NULL, NULL, NULL, 100.0, 250.0);
INSERT INTO instance VALUES ('i-2', 'older', 'p', 'v', '1', 1, 'ACTIVE', 1, NULL, NULL,
  21001, '{}', NULL, NULL, NULL, 100.0, 250.0);
CREATE UNIQUE INDEX instance_port ON instance (port);
INSERT INTO task VALUES ('t-1', 'i-1', 'p', 'create', 'SUCCEEDED', 'alice', '', NULL, 0, NULL,
  NULL, NULL, 100.0, 101.0, 150.0);
"""


def test_a_first_release_store_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "trove-svc.db"
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_RELEASE)
    database = open_store(f"sqlite:///{path}")
    try:
        assert SchemaVersion.get().version == migrations.LATEST
        instance = Instance.get_by_id("i-1")
        assert (instance.name, instance.port, instance.status_since) == ("old", 21000, 250.0)
        # A local instance that named no address is on 127.0.0.1 ...
        assert Instance.get_by_id("i-2").host == "127.0.0.1"
        # ... and a port is unique only together with its address.
        Instance.update(host="127.21.0.2", port=5432).where(Instance.id == "i-1").execute()
        Instance.update(host="127.21.0.3", port=5432).where(Instance.id == "i-2").execute()
        with pytest.raises(peewee.IntegrityError):
            Instance.update(host="127.21.0.2").where(Instance.id == "i-2").execute()
        task = Task.get_by_id("t-1")
        assert (task.state, task.runs, task.owner, task.args) == ("SUCCEEDED", 0, None, {})
        assert task.requested_by_project == ""  # who asked was not kept: shown as null
        token = Token.get_by_id("abc")
        assert (token.user, token.revoked_at, token.last_used_at) == ("alice", None, None)
    finally:
        database.close()
    # Opening it again changes nothing.
    database = open_store(f"sqlite:///{path}")
    assert SchemaVersion.select().count() == 1
    database.close()


def test_a_new_store_starts_at_the_newest_version(tmp_path: Path) -> None:
    database = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    assert SchemaVersion.get().version == migrations.LATEST
    assert (tmp_path / "new.db").stat().st_mode & 0o777 == 0o600
    database.close()


def test_a_store_with_backups_learns_which_its_tenant_deleted(tmp_path: Path) -> None:
    path = tmp_path / "trove-svc.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:  # as the release before this one left it
        db.execute("ALTER TABLE backup DROP COLUMN deleted_by_tenant_at")
        db.execute("ALTER TABLE service_status DROP COLUMN lease_until")
        db.execute(
            "INSERT INTO backup (id, name, project_id, instance_id, datastore, datastore_version,"
            " kind, state, details, created_at, updated_at)"
            " VALUES ('b-1', 'b', 'p', 'i-1', 'postgresql', '15', 'full', 'COMPLETED', '{}', 1, 1)"
        )
        db.execute(
            "UPDATE schema_version SET version = ?",
            (migrations.MIGRATIONS.index(migrations._tenant_deleted_backups),),
        )
    database = open_store(f"sqlite:///{path}")
    try:
        assert SchemaVersion.get().version == migrations.LATEST
        assert Backup.get_by_id("b-1").deleted_by_tenant_at is None
    finally:
        database.close()


def test_a_store_before_source_leases_learns_them_none_granted(tmp_path: Path) -> None:
    path = tmp_path / "trove-svc.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:  # as the release before this one left it
        db.execute("ALTER TABLE service_status DROP COLUMN lease_until")
        db.execute(
            "UPDATE schema_version SET version = ?",
            (migrations.MIGRATIONS.index(migrations._source_leases),),
        )
    database = open_store(f"sqlite:///{path}")
    try:
        assert SchemaVersion.get().version == migrations.LATEST
        assert "lease_until" in {c.name for c in database.get_columns("service_status")}
    finally:
        database.close()


def test_a_store_before_warm_pools_learns_them_none_warm(tmp_path: Path) -> None:
    path = tmp_path / "trove-svc.db"
    open_store(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as db:  # as the release before this one left it
        db.execute("DROP INDEX instance_warm_slot")
        db.execute("ALTER TABLE instance DROP COLUMN warm_slot")
        db.execute(
            "UPDATE schema_version SET version = ?",
            (migrations.MIGRATIONS.index(migrations._warm_pool),),
        )
    database = open_store(f"sqlite:///{path}")
    try:
        assert SchemaVersion.get().version == migrations.LATEST
        assert "warm_slot" in {c.name for c in database.get_columns("instance")}
        unique = {i.name: i.unique for i in database.get_indexes("instance")}
        assert unique.get("instance_warm_slot") is True
    finally:
        database.close()
