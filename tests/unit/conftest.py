"""The rules the host's own engines describe, for tests that check values against them.

Read from a throwaway server of each engine this host has, with the code that describes a
version to the service (the system's own servers are never touched).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.casts import Casts
from trove_svc.domain import tasks
from trove_svc.store.db import open_store
from trove_svc.store.models import Datastore, DatastoreVersion
from trove_wire import datastores


def _described(name: str) -> list[dict[str, Any]]:
    spec = datastores.get(name)
    found = spec.discover()
    assert found is not None, f"{name} is not installed (scripts/bootstrap.sh installs it)"
    return [rule.record() for rule in spec.describe_parameters(found)]


@pytest.fixture(scope="session")
def postgresql_described() -> list[dict[str, Any]]:
    """The records a PostgreSQL version's description holds (`parameter_rules`)."""
    return _described("postgresql")


@pytest.fixture(scope="session")
def mariadb_described() -> list[dict[str, Any]]:
    """The records a MariaDB version's description holds (`parameter_rules`)."""
    return _described("mariadb")


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


@pytest.fixture
def task(tmp_path: Path) -> Iterator[str]:
    """Task t-1 (a create of instance i-1) recorded in a store of its own."""
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    tasks.record("t-1", "i-1", "p", "create", "alice", "req-1", 0.0, {"databases": []}, "sealed")
    yield "t-1"
    database.close()


@pytest.fixture
def casts() -> Casts:
    """The task managers' queue, stood in for: what was cast to it."""
    return Casts()
