"""The conductor's grant of a source's lease, against a real (SQLite) store: recorded
before it is sent, for a source with replicas whose guest names its heartbeat, and for no
other instance; none once the source is being failed over."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import rows
from trove_svc.conductor.service import Conductor
from trove_svc.domain import catalog, errors, status, tasks
from trove_svc.process.settings import Settings
from trove_svc.security.keys import KeyRing, ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import Instance, ServiceStatus
from trove_wire import contract, seal
from trove_wire.amqp import Delivery
from trove_wire.envelope import Envelope

LEASE = 10.0


@dataclass
class FakeBus:
    """Records each cast with the lease the store held when it was sent."""

    sent: list[tuple[str, Any, float, float | None]] = field(default_factory=list)
    down: bool = False

    def cast_guest(self, instance_id: str, message: Any, ttl: float) -> None:
        if self.down:
            raise errors.ServiceUnavailable("The message bus is unavailable.")
        recorded = ServiceStatus.get_by_id(instance_id).lease_until
        self.sent.append((instance_id, message, ttl, recorded))


@dataclass
class World:
    conductor: Conductor
    bus: FakeBus
    keys: ServiceKeys
    guest_keys: dict[str, bytes]
    now: list[float]

    def add(self, instance_id: str, replica_of: str | None = None) -> None:
        key, sealed = self.keys.new_instance_key(instance_id)
        self.guest_keys[instance_id] = key
        rows.instance(
            id=instance_id,
            name=instance_id,
            status_since=0,
            guest_key=sealed,
            replica_of_id=replica_of,
        )
        ServiceStatus.create(instance=instance_id)

    def beat(
        self,
        instance_id: str,
        beat: str | None = "b-1",
        health: str = "HEALTHY",
        leased: bool = False,
    ) -> None:
        args: dict[str, Any] = {"operating_status": health, "leased": leased}
        if beat is not None:
            args["beat"] = beat
        self.now[0] += 1
        envelope = Envelope(method="heartbeat", sent_at=self.now[0] - 0.5, args=args)
        body = seal.seal(
            self.guest_keys[instance_id], seal.report_from(instance_id), envelope.to_json()
        )
        self.conductor.handle(instance_id, Delivery(body=body))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    now = [100.0]
    settings = Settings(state_dir=tmp_path, clock=lambda: now[0], source_lease=LEASE)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    keys = ServiceKeys(seal.new_key())
    bus = FakeBus()
    conductor = Conductor(settings, "amqp://127.0.0.1:1/", KeyRing(keys), bus=bus)  # type: ignore[arg-type]
    found = World(conductor, bus, keys, {}, now)
    found.add("source")
    found.add("replica", replica_of="source")
    found.add("alone")
    yield found
    database.close()


def test_a_source_is_granted_its_lease_after_it_is_recorded(world: World) -> None:
    world.beat("source", "beat-7", leased=True)
    (sent,) = world.bus.sent
    instance_id, grant, ttl, recorded = sent
    assert instance_id == "source" and ttl == LEASE
    assert grant == contract.LeaseGrant(beat="beat-7", lease=LEASE, resume=True)
    # In the store before it went, counted from receipt.
    assert recorded == world.now[0] + LEASE


def test_a_first_grant_is_sent_but_trusted_only_once_the_guest_holds_it(world: World) -> None:
    world.beat("source", "beat-1")  # holds none yet: it may never get this one
    assert world.bus.sent[0][1] == contract.LeaseGrant(beat="beat-1", lease=LEASE, resume=True)
    assert ServiceStatus.get_by_id("source").lease_until is None
    world.beat("source", "beat-2", leased=True)
    assert ServiceStatus.get_by_id("source").lease_until == world.now[0] + LEASE


def test_no_lease_for_a_standalone_instance_a_replica_or_a_guest_without_leases(
    world: World,
) -> None:
    world.beat("alone")
    world.beat("replica")
    world.beat("source", beat=None)
    world.beat("source", health="SHUTDOWN")
    assert world.bus.sent == []
    assert [row.lease_until for row in ServiceStatus.select()] == [None, None, None]


def test_no_lease_once_its_failover_began(world: World) -> None:
    world.beat("source", leased=True)
    granted_until = ServiceStatus.get_by_id("source").lease_until
    tasks.record("t-1", "source", "p1", "eject", "trove-svc", "req-1", 0.0)
    Instance.update(status=status.EJECT).where(Instance.id == "source").execute()
    world.beat("source", "b-2")
    assert len(world.bus.sent) == 1
    assert ServiceStatus.get_by_id("source").lease_until == granted_until


def test_during_a_switchover_the_lease_runs_on_but_a_lapsed_fence_stays(world: World) -> None:
    tasks.record("t-1", "replica", "p1", "promote", "alice", "req-1", 0.0, None, None)
    world.beat("source")
    (sent,) = world.bus.sent
    assert sent[1].resume is False


def test_a_grant_the_bus_refuses_is_only_logged(world: World) -> None:
    world.bus.down = True
    world.beat("source", leased=True)
    assert ServiceStatus.get_by_id("source").lease_until == world.now[0] + LEASE
    assert ServiceStatus.get_by_id("source").operating_status == "HEALTHY"


def test_no_leases_when_they_are_turned_off(tmp_path: Path, world: World) -> None:
    world.conductor._settings = Settings(state_dir=tmp_path, source_lease=0)
    world.beat("source")
    assert world.bus.sent == []
    world.beat("source", "b-2", leased=True)  # held from before: released, writable
    assert world.bus.sent[-1][1] == contract.LeaseRelease(beat="b-2", resume=True)


def test_a_guest_holding_a_lease_its_instance_no_longer_needs_is_released(world: World) -> None:
    world.beat("source")
    Instance.delete().where(Instance.id == "replica").execute()  # its last replica gone
    world.beat("source", "b-2", leased=True)
    assert world.bus.sent[-1][1] == contract.LeaseRelease(beat="b-2", resume=True)
    assert ServiceStatus.get_by_id("source").lease_until is None
    world.beat("alone", "b-3")  # holds none: nothing to release
    assert len(world.bus.sent) == 2


def test_a_failed_over_source_is_released_without_resuming(world: World) -> None:
    world.beat("source")
    Instance.update(replica_of_id=None).where(Instance.id == "replica").execute()
    Instance.update(replica_of_id="replica").where(Instance.id == "source").execute()
    world.beat("source", "b-2", leased=True)
    assert world.bus.sent[-1][1] == contract.LeaseRelease(beat="b-2", resume=False)


def test_a_source_being_failed_over_is_never_released(world: World) -> None:
    world.beat("source", leased=True)
    tasks.record("t-1", "source", "p1", "eject", "trove-svc", "req-1", 0.0)
    Instance.update(status=status.EJECT).where(Instance.id == "source").execute()
    world.beat("source", "b-2", leased=True)
    assert len(world.bus.sent) == 1
    assert ServiceStatus.get_by_id("source").lease_until is not None
