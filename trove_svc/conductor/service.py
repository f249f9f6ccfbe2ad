"""The conductor's process: consume guest reports, drop stale ones, record the rest."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from trove_svc import status
from trove_svc.bus.client import CONDUCTOR_QUEUE
from trove_svc.settings import Settings
from trove_svc.store.models import ServiceStatus
from trove_wire.amqp import Consumer
from trove_wire.envelope import Envelope, Reply

LOG = logging.getLogger(__name__)


class Conductor:
    def __init__(self, settings: Settings) -> None:
        self._clock = settings.clock
        self._expiry = settings.heartbeat_expiry
        self._sweep_every = max(settings.heartbeat_interval, 0.5)
        self._stopping = threading.Event()
        self.dropped_stale = 0
        self._handlers: dict[str, Callable[[Envelope], None]] = {
            "heartbeat": self.on_heartbeat,
        }
        self.consumer = Consumer(settings.transport_url, CONDUCTOR_QUEUE, self.handle)

    def handle(self, envelope: Envelope) -> Reply | None:
        handler = self._handlers.get(envelope.method)
        if handler is None:
            LOG.error("dropped unknown conductor method %r", envelope.method)
        else:
            handler(envelope)
        return None

    def on_heartbeat(self, envelope: Envelope) -> None:
        args: dict[str, Any] = envelope.args
        instance_id = str(args.get("instance_id", ""))
        newer = ServiceStatus.last_sent_at.is_null() | (
            ServiceStatus.last_sent_at < envelope.sent_at
        )
        updated = (
            ServiceStatus.update(
                operating_status=str(args.get("operating_status", "ERROR"))[:32],
                message=args.get("message"),
                disk_used_bytes=args.get("disk_used_bytes"),
                last_sent_at=envelope.sent_at,
                last_received_at=self._clock(),
            )
            .where((ServiceStatus.instance == instance_id) & newer)
            .execute()
        )
        if updated == 0:
            self.dropped_stale += 1
            LOG.debug("dropped a stale or unknown heartbeat for %s", instance_id)
            return
        if args.get("operating_status") == status.HEALTHY:
            status.promote_if_ready(instance_id)

    def sweep(self) -> int:
        """Mark the instances whose guests went silent (see `status.expire_silent_guests`)."""
        marked = status.expire_silent_guests(self._clock(), self._expiry)
        if marked:
            LOG.warning("%d instance(s) stopped sending heartbeats", marked)
        return marked

    def _sweep_loop(self) -> None:
        while not self._stopping.wait(self._sweep_every):
            try:
                self.sweep()
            except Exception:
                LOG.exception("heartbeat sweep failed; trying again")

    def run(self) -> None:
        sweeper = threading.Thread(target=self._sweep_loop, name="heartbeat-sweep", daemon=True)
        sweeper.start()
        self.consumer.run()
        self._stopping.set()

    def stop(self) -> None:
        self._stopping.set()
        self.consumer.stop()
