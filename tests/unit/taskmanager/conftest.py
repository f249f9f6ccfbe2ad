"""What the flows' unit tests start from: a store of their own (SQLite) with the host's
PostgreSQL registered, settings on a clock that waits without sleeping, and the fakes of
`tests.unit.taskmanager.fakes` ready to hand to a flow."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import INSTANCE_PORTS, local_addresses
from tests.unit.taskmanager.fakes import Effects, FakeClock
from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The service's clock; a flow's sleeps advance it (and `time.monotonic` follows it),
    so its polls and deadlines take no real time."""
    fake = FakeClock()
    monkeypatch.setattr(time, "sleep", fake.advance)
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the host's PostgreSQL 15 and the default flavors, made once: each test
    gets a copy (a fresh store's migrations cost several times a copy)."""
    path = tmp_path_factory.mktemp("store") / "template.db"
    database = open_store(f"sqlite:///{path}")
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    database.close()
    return path


@pytest.fixture
def effects(tmp_path: Path, clock: FakeClock, store_template: Path) -> Iterator[Effects]:
    """A store of its own (a copy of `store_template`), and the fakes a flow is given (a
    runner, the guests, the broker's accounts) around settings of its own."""
    shutil.copyfile(store_template, tmp_path / "store.db")
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    first_port, last_port = INSTANCE_PORTS
    settings = Settings(
        state_dir=tmp_path / "state",
        clock=clock,
        port_range_start=first_port,
        port_range_end=last_port,
        # A network no deployment of this run is given (theirs start at the shared range's
        # first port or at a reserved block's), so that an instance an integration test of
        # this worker left running is never at an address these tests expect free.
        local_addresses=local_addresses(first_port + 1),
        limit_backup=60.0,
        limit_build=60.0,
    )
    settings.secrets_dir.mkdir(parents=True, mode=0o700)  # as `trove-svc setup` makes it
    yield Effects(settings)
    database.close()
