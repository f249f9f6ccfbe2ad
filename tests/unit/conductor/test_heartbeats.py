"""The conductor's heartbeat rules, against a real (SQLite) store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trove_svc import catalog, status
from trove_svc.conductor.service import Conductor
from trove_svc.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Instance, ServiceStatus
from trove_wire.envelope import Envelope


@pytest.fixture
def conductor(tmp_path: Path) -> Iterator[Conductor]:
    settings = Settings(state_dir=tmp_path)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    instance = Instance.create(
        id="i-1",
        name="x",
        project_id="p",
        datastore_version=DatastoreVersion.get(),
        flavor="1",
        volume_size=1,
        status=status.BUILD,
        created_at=1,
        updated_at=1,
    )
    ServiceStatus.create(instance=instance)
    yield Conductor(settings)
    database.close()


def beat(sent_at: float, health: str = "HEALTHY", used: int = 100) -> Envelope:
    return Envelope(
        method="heartbeat",
        sent_at=sent_at,
        args={"instance_id": "i-1", "operating_status": health, "disk_used_bytes": used},
    )


def test_stale_heartbeat_is_dropped(conductor: Conductor) -> None:
    conductor.handle(beat(10.0, "SHUTDOWN", used=5))
    conductor.handle(beat(9.0, "HEALTHY", used=7))
    row = ServiceStatus.get_by_id("i-1")
    assert (row.operating_status, row.disk_used_bytes, row.last_sent_at) == ("SHUTDOWN", 5, 10.0)
    assert conductor.dropped_stale == 1


def test_active_needs_both_playbook_and_healthy_heartbeat(conductor: Conductor) -> None:
    conductor.handle(beat(1.0))
    assert Instance.get_by_id("i-1").status == status.BUILD  # playbook still running
    Instance.update(provisioned=True).execute()
    conductor.handle(beat(2.0, "SHUTDOWN"))
    assert Instance.get_by_id("i-1").status == status.BUILD  # not healthy yet
    conductor.handle(beat(3.0))
    assert Instance.get_by_id("i-1").status == status.ACTIVE


def test_task_manager_promotes_when_the_heartbeat_came_first(conductor: Conductor) -> None:
    conductor.handle(beat(1.0))
    Instance.update(provisioned=True).execute()
    assert status.promote_if_ready("i-1") is True
    assert status.promote_if_ready("i-1") is False  # already ACTIVE: a no-op


def test_heartbeat_for_an_unknown_instance_changes_nothing(conductor: Conductor) -> None:
    conductor.handle(
        Envelope(
            method="heartbeat",
            sent_at=1.0,
            args={"instance_id": "nope", "operating_status": "HEALTHY"},
        )
    )
    assert ServiceStatus.select().count() == 1


def test_silent_guest_expires_and_recovers(tmp_path: Path) -> None:
    now = [100.0]
    settings = Settings(state_dir=tmp_path, clock=lambda: now[0], heartbeat_expiry=10.0)
    open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    instance = Instance.create(
        id="i-2",
        name="x",
        project_id="p",
        datastore_version=DatastoreVersion.get(),
        flavor="1",
        volume_size=1,
        status=status.ACTIVE,
        provisioned=True,
        created_at=1,
        updated_at=1,
    )
    ServiceStatus.create(instance=instance)
    conductor = Conductor(settings)
    conductor.handle(
        Envelope(
            method="heartbeat",
            sent_at=100.0,
            args={"instance_id": "i-2", "operating_status": "HEALTHY"},
        )
    )
    now[0] = 105.0
    assert conductor.sweep() == 0
    assert ServiceStatus.get_by_id("i-2").operating_status == "HEALTHY"
    now[0] = 111.0
    assert conductor.sweep() == 1
    row = ServiceStatus.get_by_id("i-2")
    assert row.operating_status == "SHUTDOWN" and "No heartbeat" in row.message
    assert conductor.sweep() == 0  # already marked
    conductor.handle(
        Envelope(
            method="heartbeat",
            sent_at=111.0,
            args={"instance_id": "i-2", "operating_status": "HEALTHY"},
        )
    )
    assert ServiceStatus.get_by_id("i-2").operating_status == "HEALTHY"
