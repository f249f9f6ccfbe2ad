"""The conductor's rules for guest reports, against a real (SQLite) store: stale, forged,
replayed and badly dated reports change nothing; the rest set the status."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import peewee
import pytest

from trove_svc.conductor.service import Conductor
from trove_svc.domain import catalog, status
from trove_svc.process.settings import Settings
from trove_svc.security.keys import KeyRing, ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Instance, ServiceStatus
from trove_wire import contract, seal
from trove_wire.amqp import Delivery
from trove_wire.envelope import Envelope


@dataclass
class World:
    conductor: Conductor
    keys: ServiceKeys
    guest_keys: dict[str, bytes]
    now: list[float]

    def add(self, instance_id: str, state: str = status.BUILD, provisioned: bool = False) -> None:
        key, sealed = self.keys.new_instance_key(instance_id)
        self.guest_keys[instance_id] = key
        instance = Instance.create(
            id=instance_id,
            name="x",
            project_id="p",
            datastore_version=DatastoreVersion.get(),
            flavor="1",
            volume_size=1,
            status=state,
            status_since=self.now[0],
            provisioned=provisioned,
            guest_key=sealed,
            created_at=1,
            updated_at=1,
        )
        ServiceStatus.create(instance=instance)

    def beat(
        self,
        instance_id: str,
        sent_at: float,
        health: str = "HEALTHY",
        used: int = 100,
        key: bytes | None = None,
        message_id: str | None = None,
    ) -> Delivery:
        envelope = Envelope(
            method="heartbeat",
            sent_at=sent_at,
            args={"operating_status": health, "disk_used_bytes": used},
            **({"id": message_id} if message_id else {}),
        )
        sealed = seal.seal(
            key or self.guest_keys[instance_id], seal.report_from(instance_id), envelope.to_json()
        )
        return Delivery(body=sealed)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    now = [100.0]
    settings = Settings(state_dir=tmp_path, clock=lambda: now[0], heartbeat_expiry=10.0)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    keys = ServiceKeys(seal.new_key())
    conductor = Conductor(settings, "amqp://127.0.0.1:1/", KeyRing(keys))
    found = World(conductor, keys, {}, now)
    found.add("i-1")
    yield found
    database.close()


def test_stale_heartbeat_is_dropped(world: World) -> None:
    world.conductor.handle("i-1", world.beat("i-1", 99.0, "SHUTDOWN", used=5))
    world.conductor.handle("i-1", world.beat("i-1", 98.0, "HEALTHY", used=7))
    row = ServiceStatus.get_by_id("i-1")
    assert (row.operating_status, row.disk_used_bytes, row.last_sent_at) == ("SHUTDOWN", 5, 99.0)
    assert world.conductor.dropped_stale == 1


def test_active_needs_both_playbook_and_healthy_heartbeat(world: World) -> None:
    world.conductor.handle("i-1", world.beat("i-1", 97.0))
    assert Instance.get_by_id("i-1").status == status.BUILD  # playbook still running
    Instance.update(provisioned=True).execute()
    world.conductor.handle("i-1", world.beat("i-1", 98.0, "SHUTDOWN"))
    assert Instance.get_by_id("i-1").status == status.BUILD  # not healthy yet
    world.conductor.handle("i-1", world.beat("i-1", 99.0))
    assert Instance.get_by_id("i-1").status == status.ACTIVE


def test_task_manager_promotes_when_the_heartbeat_came_first(world: World) -> None:
    world.conductor.handle("i-1", world.beat("i-1", 99.0))
    Instance.update(provisioned=True).execute()
    assert status.promote_if_ready("i-1", 100.0) is True
    assert status.promote_if_ready("i-1", 100.0) is False  # already ACTIVE: a no-op


def _unchanged(world: World) -> None:
    row = ServiceStatus.get_by_id("i-1")
    assert (row.operating_status, row.last_sent_at) == ("NEW", None)


def test_forged_reports_change_nothing_and_are_counted(world: World) -> None:
    world.add("i-2")
    # With a key that is not i-1's (say, i-2's own, held by an attacker on instance i-2).
    world.conductor.handle("i-1", world.beat("i-1", 99.0, key=world.guest_keys["i-2"]))
    # Garbage, and a report for an instance that does not exist.
    world.conductor.handle("i-1", Delivery(body=b"not sealed"))
    world.conductor.handle("nope", world.beat("nope", 99.0, key=seal.new_key()))
    # i-1's own report, sealed with i-1's key, relayed through i-2's queue: the queue
    # a report comes from says whose it is.
    world.conductor.handle("i-2", world.beat("i-1", 99.0))
    _unchanged(world)
    assert world.conductor.refused.snapshot() == {"auth": 2, "malformed": 1, "key": 1}


def test_reports_dated_outside_the_window_are_refused(world: World) -> None:
    world.conductor.handle("i-1", world.beat("i-1", 100.0 + 10**7))  # would shadow every real beat
    world.conductor.handle("i-1", world.beat("i-1", 100.0 - 3600))
    _unchanged(world)
    assert world.conductor.refused.snapshot() == {"clock": 2}
    world.conductor.handle("i-1", world.beat("i-1", 99.0))
    assert ServiceStatus.get_by_id("i-1").operating_status == "HEALTHY"


def test_a_replayed_report_is_refused(world: World) -> None:
    first = world.beat("i-1", 99.0, "SHUTDOWN", message_id="m-1")
    world.conductor.handle("i-1", first)
    ServiceStatus.update(last_sent_at=None, operating_status="NEW").execute()
    world.conductor.handle("i-1", first)
    _unchanged(world)
    assert world.conductor.refused.snapshot() == {"replay": 1}


def test_a_report_whose_handling_failed_is_handled_when_delivered_again(world: World) -> None:
    """The broker delivers a report again when its handling failed (the store was locked,
    say): that is no replay."""
    delivery = world.beat("i-1", 99.0, message_id="m-2")
    record_heartbeat = world.conductor.on_heartbeat
    attempts: list[str] = []

    def store_locked_at_first(instance_id: str, envelope: Envelope) -> None:
        attempts.append(envelope.id)
        if len(attempts) == 1:
            raise peewee.OperationalError("database is locked")
        record_heartbeat(instance_id, envelope)

    world.conductor._handlers["heartbeat"] = store_locked_at_first
    with pytest.raises(peewee.OperationalError):
        world.conductor.handle("i-1", delivery)
    world.conductor.handle("i-1", delivery)
    assert attempts == ["m-2", "m-2"]
    assert ServiceStatus.get_by_id("i-1").operating_status == "HEALTHY"
    assert world.conductor.refused.snapshot() == {}


def test_silent_guest_expires_and_recovers(world: World) -> None:
    world.add("i-2", status.ACTIVE, provisioned=True)
    world.conductor.handle("i-2", world.beat("i-2", 100.0))
    world.now[0] = 105.0
    assert world.conductor.sweep() == 0
    assert ServiceStatus.get_by_id("i-2").operating_status == "HEALTHY"
    world.now[0] = 111.0
    assert world.conductor.sweep() == 1
    row = ServiceStatus.get_by_id("i-2")
    assert row.operating_status == "SHUTDOWN" and "No heartbeat" in row.message
    assert world.conductor.sweep() == 0  # already marked
    world.conductor.handle("i-2", world.beat("i-2", 111.0))
    assert ServiceStatus.get_by_id("i-2").operating_status == "HEALTHY"


def test_reports_over_their_guests_rate_are_dropped_unopened_and_counted(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path / "rate", clock=lambda: 100.0, report_burst=3)
    conductor = Conductor(settings, "amqp://127.0.0.1:1/", KeyRing(ServiceKeys(seal.new_key())))
    beat, backup = contract.Heartbeat.method, contract.BackupReport.method
    assert [conductor.admit("i-1", beat) for _ in range(5)] == [True, True, True, False, False]
    assert conductor.admit("i-2", beat)  # another guest keeps its own rate
    assert conductor.admit("i-1", backup)  # a backup's report is not behind the heartbeats
    # Kinds made up share one bucket.
    assert [conductor.admit("i-1", f"made-up-{n}") for n in range(4)] == [True, True, True, False]
    assert conductor.status()["rate_limited"] == 3


class _Broker:
    """The management API's answer: messages in each queue of the vhost."""

    def __init__(self, depths: dict[str, int]) -> None:
        self.depths = depths

    def queue_depths(self, vhost: str) -> dict[str, int]:
        return self.depths


def test_reports_waiting_full_queues_and_dead_letters_show_in_the_metrics(
    world: World, tmp_path: Path
) -> None:
    from trove_svc.process import metrics

    broker = _Broker({"reports.a": 1000, "reports.b": 3, "conductor.dead": 2, "taskmanager": 7})
    settings = Settings(state_dir=tmp_path / "backlog", report_backlog=1000)
    conductor = Conductor(
        settings,
        "amqp://127.0.0.1:1/",
        KeyRing(ServiceKeys(seal.new_key())),
        broker,  # type: ignore[arg-type]
    )
    conductor.sweep()  # on the store the world opened
    found = metrics.get()
    shown = [
        gauge.collect()[0].samples[0].value
        for gauge in (found.reports_queued, found.report_queues_full, found.reports_dead_letters)
    ]
    assert shown == [1003, 1, 2]
