"""The rules the host's own engines describe, for tests that check values against them.

Read from the PostgreSQL and MariaDB servers this machine runs (127.0.0.1:5432 and :3306),
with the same code that reads a throwaway server's description, and only read: nothing
is written to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pymysql
import pytest

from trove_svc.store.models import Datastore, DatastoreVersion
from trove_wire.datastores import mariadb, postgresql


@pytest.fixture(scope="session")
def postgresql_described() -> list[dict[str, Any]]:
    """The records a PostgreSQL version's description holds (`parameter_rules`)."""
    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=5
    ) as conn:
        return [rule.record() for rule in postgresql.described_by(conn)]


@pytest.fixture(scope="session")
def mariadb_described() -> list[dict[str, Any]]:
    """The records a MariaDB version's description holds (`parameter_rules`)."""
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=5)
    try:
        with conn.cursor() as cursor:
            return [rule.record() for rule in mariadb.described_by(cursor)]
    finally:
        conn.close()


def _keep_description(datastore: str, records: list[dict[str, Any]]) -> None:
    versions = DatastoreVersion.select(DatastoreVersion.id).join(Datastore)
    DatastoreVersion.update(parameters=records).where(
        DatastoreVersion.id.in_(versions.where(Datastore.name == datastore))
    ).execute()


@pytest.fixture
def keep_description() -> Callable[[str, list[dict[str, Any]]], None]:
    """keep_description(datastore, records): the store's versions of `datastore` get this
    description, as if their engine had been asked already (the open store's)."""
    return _keep_description
