"""The conductor's process: check guest reports, drop stale or forged ones, record the rest.

Every report is opened with the key of the instance it claims to come from; one that fails
(wrong key, another instance's id, replayed, dated outside the window, not of the
contract's shape) is dropped, counted by reason and logged without its contents, and never
changes the store. Besides, every few seconds the conductor marks instances whose guests
fell silent and ends waits that ran past their limits (`trove_svc.watchdog`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from trove_svc import backups, metrics, status, watchdog, workers
from trove_svc.keys import KeyRing
from trove_svc.settings import Settings
from trove_svc.store.models import ServiceStatus
from trove_wire import contract, seal, topology
from trove_wire.amqp import Consumer, Delivery
from trove_wire.envelope import Envelope, MalformedMessage

LOG = logging.getLogger(__name__)


class Conductor:
    def __init__(self, settings: Settings, url: str, keyring: KeyRing) -> None:
        self._settings = settings
        self._clock = settings.clock
        self._keyring = keyring
        self._sweep_every = max(min(settings.heartbeat_interval, 5.0), 0.5)
        self._stopping = threading.Event()
        self.worker_id = workers.new_id(workers.CONDUCTOR)
        self.guard = seal.ReplayGuard(settings.message_window, clock=settings.clock)
        self.refused = seal.DropCounter()
        self.dropped_stale = 0
        self._handlers: dict[str, Callable[[str, Envelope], None]] = {
            contract.Heartbeat.method: self.on_heartbeat,
            contract.BackupReport.method: self.on_backup_report,
        }
        self.consumer = Consumer(
            url, topology.CONDUCTOR, self.handle, declare=topology.declare_control_plane
        )

    def _refuse(self, reason: str, party: str) -> None:
        self.refused.add(reason)
        metrics.get().refused.labels("conductor", reason).inc()
        LOG.warning("refused a report claiming to be from %s (%s)", party[:64], reason)

    def handle(self, delivery: Delivery) -> None:
        try:
            instance_id = seal.party_of(delivery.body)
        except seal.Refused as exc:
            self._refuse(exc.reason, "?")
            return None
        key = self._keyring.for_instance(instance_id)
        if key is None:
            self._refuse("key", instance_id)
            return None
        try:
            payload = seal.open_sealed(key, seal.report_from(instance_id), delivery.body)
            envelope = Envelope.from_json(payload)
            self.guard.check(envelope.id, envelope.sent_at)
        except seal.Refused as exc:
            self._refuse(exc.reason, instance_id)
            return None
        except MalformedMessage:
            self._refuse("malformed", instance_id)
            return None
        handler = self._handlers.get(envelope.method)
        if handler is None:
            self._refuse("malformed", instance_id)
            return None
        handler(instance_id, envelope)
        return None

    def on_heartbeat(self, instance_id: str, envelope: Envelope) -> None:
        try:
            beat = contract.Heartbeat(**envelope.args)
        except TypeError:
            self._refuse("malformed", instance_id)
            return
        newer = ServiceStatus.last_sent_at.is_null() | (
            ServiceStatus.last_sent_at < envelope.sent_at
        )
        now = self._clock()
        healthy = beat.operating_status == status.HEALTHY
        updated = (
            ServiceStatus.update(
                healthy_at=now if healthy else ServiceStatus.healthy_at,
                operating_status=str(beat.operating_status)[:32],
                message=None if beat.message is None else str(beat.message)[:1000],
                disk_used_bytes=beat.disk_used_bytes,
                last_sent_at=envelope.sent_at,
                last_received_at=now,
            )
            .where((ServiceStatus.instance == instance_id) & newer)
            .execute()
        )
        if updated == 0:
            self.dropped_stale += 1
            metrics.get().heartbeats.labels("stale").inc()
            LOG.debug("dropped a stale heartbeat for %s", instance_id)
            return
        metrics.get().heartbeats.labels("recorded").inc()
        if healthy:
            status.promote_if_ready(instance_id, now)

    def on_backup_report(self, instance_id: str, envelope: Envelope) -> None:
        """A guest's word on a backup of its own instance (never another's); one that is
        not of the contract's shape, or names what the datastore's tool never would, is
        refused and changes nothing."""
        try:
            changed = backups.record_report(
                envelope.args, instance_id, self._clock(), self._settings.backups_dir
            )
        except contract.BadReport as exc:
            self._refuse("malformed", instance_id)
            LOG.warning("the backup report refused for %s: %s", instance_id, exc)
            return
        if not changed:
            LOG.info("dropped a backup report for %s that changes nothing", instance_id)

    def sweep(self) -> int:
        """Mark silent guests' instances, end overdue waits, say we are alive."""
        now = self._clock()
        workers.seen(self.worker_id, workers.CONDUCTOR, now)
        marked = status.expire_silent_guests(now, self._settings.heartbeat_expiry)
        if marked:
            LOG.warning("%d instance(s) stopped sending heartbeats", marked)
        return marked + watchdog.sweep(self._settings)

    def _sweep_loop(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:
                LOG.exception("sweep failed; trying again")
            if self._stopping.wait(self._sweep_every):
                return

    def run(self) -> None:
        LOG.info("conductor %s started", self.worker_id)
        sweeper = threading.Thread(target=self._sweep_loop, name="sweep", daemon=True)
        sweeper.start()
        try:
            self.consumer.run()
        finally:
            self._stopping.set()
            workers.gone(self.worker_id)

    def stop(self) -> None:
        self._stopping.set()
        self.consumer.stop()

    def status(self) -> dict[str, Any]:
        return {"refused": self.refused.snapshot(), "stale": self.dropped_stale}
