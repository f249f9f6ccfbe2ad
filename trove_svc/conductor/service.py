"""The conductor's process: consume guest reports, drop stale ones, record the rest."""

from __future__ import annotations

import logging
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

    def run(self) -> None:
        self.consumer.run()

    def stop(self) -> None:
        self.consumer.stop()
