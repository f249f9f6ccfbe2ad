"""The conductor's intake: every guest's reports queue, consumed fairly, and the cheap
check made before a report is opened.

Each guest publishes to a queue of its own (`trove_wire.topology`); the intake consumes
all of them on one connection, each consumer with a prefetch of its own, so a guest that
floods its queue has at most `prefetch` reports on their way here while every other
guest's reports go on arriving. A report its guest had no right to send yet (`admit` says
no: over its rate for the kind of report the guest declares in the message's type) is
acked and dropped on the connection's thread, unopened; the others are handled on worker
threads and acked once handled. A report whose handling fails is
delivered again; past its delivery limit the broker dead-letters it
(`topology.REPORTS_DEAD`), and the intake counts it.

Which queues to consume comes from `instances` (the instances in the store), asked every
`refresh_every` seconds: a new instance's queue is consumed once it exists (looked for
less and less often while it does not: an instance waiting for a task manager, or whose
build failed early, has none); a deleted instance's consumer goes with its queue.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
import pika.exceptions

from trove_svc.process import metrics
from trove_wire import topology
from trove_wire.amqp import CONNECTION_ERRORS, Delivery, connection_parameters

LOG = logging.getLogger(__name__)

# Reports of one guest on their way to this conductor at once (acked or not yet).
PREFETCH = 50
# Seconds between looks for a queue not made yet: doubling from the first, up to the last.
MISSING_QUEUE_RETRY = (1.0, 5.0)

ReportHandler = Callable[[str, Delivery], None]


def _not_a_missing_reports_queue(record: logging.LogRecord) -> bool:
    """pika logs each channel the broker closes as a warning, and the broker answers a look
    for a missing queue (`_queue_exists`) by closing its channel. For a reports queue that
    answer is expected: the intake looks every few seconds for the queue of each instance
    whose build has not made it yet (or failed before it could), and says nothing of it."""
    return f"NOT_FOUND - no queue '{topology.REPORTS_PREFIX}" not in record.getMessage()


logging.getLogger("pika.channel").addFilter(_not_a_missing_reports_queue)


class ReportIntake:
    def __init__(
        self,
        url: str,
        handler: ReportHandler,
        admit: Callable[[str, str], bool],
        instances: Callable[[], Iterable[str]],
        forget: Callable[[str], None] = lambda _instance_id: None,
        workers: int = 2,
        prefetch: int = PREFETCH,
        refresh_every: float = 1.0,
        reconnect_delay: float = 2.0,
    ) -> None:
        self._url = url
        self._handler = handler
        self._admit = admit
        self._instances = instances
        self._forget = forget
        self._workers = workers
        self._prefetch = prefetch
        self._refresh_every = refresh_every
        self._reconnect_delay = reconnect_delay
        self._stopping = threading.Event()
        self._missing: dict[str, tuple[float, float]] = {}  # id -> (look again at, delay)
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Consume until `stop()`; reconnects after a lost connection."""
        with ThreadPoolExecutor(self._workers, thread_name_prefix="reports") as pool:
            while not self._stopping.is_set():
                try:
                    self._consume(pool)
                except CONNECTION_ERRORS as exc:
                    self.ready.clear()
                    LOG.warning("lost RabbitMQ on the guests' reports (%s); reconnecting", exc)
                    self._stopping.wait(self._reconnect_delay)

    def _consume(self, pool: ThreadPoolExecutor) -> None:
        connection = pika.BlockingConnection(connection_parameters(self._url))
        try:
            channel = connection.channel()
            topology.declare_control_plane(channel)
            # Per consumer: each guest's queue has its own share.
            channel.basic_qos(prefetch_count=self._prefetch)
            consuming: dict[str, str] = {}  # instance id -> consumer tag
            while not self._stopping.is_set():
                self._follow(connection, channel, consuming, pool)
                self.ready.set()
                refresh_at = time.monotonic() + self._refresh_every
                while not self._stopping.is_set() and time.monotonic() < refresh_at:
                    connection.process_data_events(time_limit=0.2)
        finally:
            if connection.is_open:
                connection.close()

    def _follow(
        self,
        connection: Any,
        channel: Any,
        consuming: dict[str, str],
        pool: ThreadPoolExecutor,
    ) -> None:
        """Consume the queues of the instances there are now, and only those."""
        try:
            wanted = set(self._instances())
        except Exception:
            LOG.exception("could not list the instances whose reports to consume")
            return
        live = set(channel.consumer_tags)
        for instance_id, tag in list(consuming.items()):
            if tag not in live:  # its queue was deleted with the instance
                del consuming[instance_id]
                self._forget(instance_id)
            elif instance_id not in wanted:
                channel.basic_cancel(tag)
                del consuming[instance_id]
                self._forget(instance_id)
        now = time.monotonic()
        for instance_id in list(self._missing):
            if instance_id not in wanted:
                del self._missing[instance_id]
        for instance_id in wanted - consuming.keys():
            look_at, delay = self._missing.get(instance_id, (now, MISSING_QUEUE_RETRY[0]))
            if now < look_at:
                continue
            queue = topology.reports_queue(instance_id)
            if not _queue_exists(connection, queue):
                self._missing[instance_id] = (now + delay, min(delay * 2, MISSING_QUEUE_RETRY[1]))
                continue
            self._missing.pop(instance_id, None)
            on_message = functools.partial(self._on_message, pool, connection, instance_id)
            consuming[instance_id] = channel.basic_consume(queue, on_message)

    def _on_message(
        self,
        pool: ThreadPoolExecutor,
        connection: Any,
        instance_id: str,
        channel: Any,
        method: Any,
        props: Any,
        body: bytes,
    ) -> None:
        if not self._admit(instance_id, str(props.type or "")):
            channel.basic_ack(delivery_tag=method.delivery_tag)
            return
        headers = props.headers or {}
        delivery = Delivery(
            body=body,
            message_id=props.message_id,
            redelivered=bool(method.redelivered),
            delivery_count=int(headers.get("x-delivery-count", 0) or 0),
        )
        pool.submit(self._handle, connection, channel, method.delivery_tag, instance_id, delivery)

    def _handle(
        self, connection: Any, channel: Any, tag: int, instance_id: str, delivery: Delivery
    ) -> None:
        handled = True
        try:
            self._handler(instance_id, delivery)
        except Exception:
            handled = False
            attempt = delivery.delivery_count + 1
            if attempt >= topology.MAX_ATTEMPTS:
                metrics.get().reports_dead_lettered.inc()
                LOG.exception(
                    "a report from %s failed on each of %d deliveries; it goes to %s",
                    instance_id,
                    attempt,
                    topology.REPORTS_DEAD,
                )
            else:
                LOG.exception("a report from %s failed (delivery %d)", instance_id, attempt)

        def settle() -> None:
            if handled:
                channel.basic_ack(delivery_tag=tag)
            else:
                channel.basic_nack(delivery_tag=tag, requeue=True)

        try:
            connection.add_callback_threadsafe(settle)
        except CONNECTION_ERRORS:
            LOG.warning("connection gone before a report of %s was settled", instance_id)


def _queue_exists(connection: Any, queue: str) -> bool:
    """Asked on a channel of its own, which the broker closes when the queue is missing."""
    probe = connection.channel()
    try:
        probe.queue_declare(queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise
    probe.close()
    return True
