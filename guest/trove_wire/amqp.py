"""RabbitMQ plumbing on pika: confirmed publishes, calls with a reply queue, consumers.

This layer moves bytes; what they mean (envelopes) and whether to trust them (seals) is
decided above it. pika's BlockingConnection is single-threaded and sends no heartbeats
while a callback runs, so a `Consumer` hands each message to a worker thread and brings the
ack (and any reply) back onto the connection's thread with `add_callback_threadsafe`. A
`Publisher` owns its own connection: use one per thread.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

LOG = logging.getLogger(__name__)

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
)
DEFAULT_EXCHANGE = ""


class BrokerUnavailable(ConnectionError):
    """RabbitMQ could not be reached, or refused the message."""


class NoConsumerQueue(LookupError):
    """A message was published where no queue receives it (nobody to deliver to)."""


class CallTimedOut(TimeoutError):
    """A call got no reply within its timeout."""


def broker_urls(url: str) -> list[str]:
    """One URL per broker node of `url`, which may name a cluster's nodes comma-separated
    (`amqp://user:pw@rabbit-1:5672,rabbit-2:5672,rabbit-3:5672/vhost`, as oslo.messaging
    writes them): each with the same account, vhost and query."""
    scheme, _, rest = url.partition("://")
    netloc, slash, tail = rest.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    return [f"{scheme}://{credentials}{at}{host}{slash}{tail}" for host in hosts.split(",")]


def connection_parameters(url: str, heartbeat: int = 30) -> list[pika.URLParameters]:
    """What pika connects with: each broker node of `url` in turn (a node that is down is
    passed over for the next), starting at a random one so that processes spread over the
    nodes."""
    nodes = []
    for node_url in broker_urls(url):
        params = pika.URLParameters(node_url)
        params.heartbeat = heartbeat
        params.blocked_connection_timeout = 30
        params.connection_attempts = 1
        params.socket_timeout = 5
        params.stack_timeout = 10
        nodes.append(params)
    first = random.randrange(len(nodes))
    return nodes[first:] + nodes[:first]


class Publisher:
    """Confirmed publishes and calls on one connection; not thread-safe.

    A broken connection is replaced once per operation. Calls wait on a reply queue of the
    publisher's own (exclusive, gone with the connection), bound to the exchange the other
    end replies through.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._reply_queue: str | None = None
        self._reply_bindings: set[str] = set()
        self._replies: dict[str, bytes] = {}

    def _ensure(self) -> Any:
        self._catch_up()
        if self._connection is None or self._connection.is_closed:
            try:
                self._connection = pika.BlockingConnection(connection_parameters(self._url))
                self._channel = self._connection.channel()
                self._channel.confirm_delivery()
            except CONNECTION_ERRORS as exc:
                self._connection = None
                raise BrokerUnavailable(f"cannot reach RabbitMQ: {exc}") from exc
            self._reply_queue = None
            self._reply_bindings.clear()
        return self._channel

    def _catch_up(self) -> None:
        """Read what the broker sent since this connection was last used: heartbeats (which
        this answers), or its close of a connection left idle past them, which is then
        replaced before anything is written to it (a write to a socket the broker closed
        fails with a traceback in pika's log)."""
        if self._connection is None or not self._connection.is_open:
            return
        try:
            self._connection.process_data_events(0)
        except CONNECTION_ERRORS:
            LOG.info("RabbitMQ closed an idle connection: opening another")
            self.close()

    def _retrying(self, operation: Callable[[], Any]) -> Any:
        for attempt in (1, 2):
            try:
                return operation()
            except CONNECTION_ERRORS as exc:
                self.close()
                if attempt == 2 or isinstance(exc, pika.exceptions.ChannelClosedByBroker):
                    raise BrokerUnavailable(f"RabbitMQ failed: {exc}") from exc
        raise AssertionError("unreachable")

    def check(self) -> str:
        """The broker node this publisher is connected to (`host:port`); BrokerUnavailable
        unless a connection is open (or can be opened)."""
        self._retrying(self._ensure)  # which reads what the broker sent first
        # pika keeps the parameters of the node it reached on the connection's internals.
        params = getattr(getattr(self._connection, "_impl", None), "params", None)
        return f"{getattr(params, 'host', '?')}:{getattr(params, 'port', '?')}"

    def declare(self, declarations: Callable[[Any], None]) -> None:
        """Run queue, exchange and binding declarations on this connection's channel."""
        self._retrying(lambda: declarations(self._ensure()))

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        message_id: str,
        persistent: bool = True,
        headers: dict[str, Any] | None = None,
        kind: str | None = None,
        expiration: float | None = None,
    ) -> None:
        """Publish and wait for the broker's confirm; NoConsumerQueue if nothing takes it.
        `kind` is the message's type, readable before a sealed body is opened; a message
        still queued `expiration` seconds on is dropped by the broker."""

        def op() -> None:
            channel = self._ensure()
            try:
                channel.basic_publish(
                    exchange=exchange,
                    routing_key=routing_key,
                    body=body,
                    properties=pika.BasicProperties(
                        delivery_mode=pika.DeliveryMode.Persistent if persistent else None,
                        message_id=message_id,
                        headers=headers,
                        type=kind,
                        expiration=None
                        if expiration is None
                        else str(max(1, int(expiration * 1000))),
                    ),
                    mandatory=True,
                )
            except pika.exceptions.UnroutableError as exc:
                raise NoConsumerQueue(f"nothing receives {routing_key!r}") from exc
            except pika.exceptions.NackError as exc:
                raise BrokerUnavailable("RabbitMQ refused the message") from exc

        self._retrying(op)

    def _reply_queue_for(self, reply_exchange: str) -> str:
        channel = self._ensure()
        if self._reply_queue is None:
            declared = channel.queue_declare("", exclusive=True, auto_delete=True)
            self._reply_queue = str(declared.method.queue)
            channel.basic_consume(self._reply_queue, self._on_reply, auto_ack=True)
        if reply_exchange != DEFAULT_EXCHANGE and reply_exchange not in self._reply_bindings:
            channel.queue_bind(self._reply_queue, reply_exchange, routing_key=self._reply_queue)
            self._reply_bindings.add(reply_exchange)
        return self._reply_queue

    def _on_reply(self, _channel: Any, _method: Any, props: Any, body: bytes) -> None:
        if props.correlation_id:
            self._replies[str(props.correlation_id)] = body

    def call(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        correlation_id: str,
        timeout: float,
        reply_exchange: str = DEFAULT_EXCHANGE,
    ) -> bytes:
        """Send a request and wait for the reply that carries `correlation_id`."""

        def op() -> bytes:
            channel = self._ensure()
            reply_to = self._reply_queue_for(reply_exchange)
            try:
                channel.basic_publish(
                    exchange=exchange,
                    routing_key=routing_key,
                    body=body,
                    properties=pika.BasicProperties(
                        reply_to=reply_to,
                        correlation_id=correlation_id,
                        expiration=str(max(1, int(timeout * 1000))),
                        message_id=uuid.uuid4().hex,
                    ),
                    mandatory=True,
                )
            except pika.exceptions.UnroutableError as exc:
                raise NoConsumerQueue(f"nothing receives {routing_key!r}") from exc
            return self._wait_for_reply(correlation_id, timeout)

        result: bytes = self._retrying(op)
        return result

    def _wait_for_reply(self, correlation_id: str, timeout: float) -> bytes:
        assert self._connection is not None
        deadline = time.monotonic() + timeout
        while correlation_id not in self._replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallTimedOut(f"no reply within {timeout:g}s")
            self._connection.process_data_events(time_limit=min(remaining, 0.5))
        # Late replies to calls that timed out are dropped here, never matched later.
        reply = self._replies.pop(correlation_id)
        self._replies.clear()
        return reply

    def delete_queue(self, queue: str) -> None:
        """Delete `queue`; one that is not there counts as deleted."""

        def op() -> None:
            try:
                self._ensure().queue_delete(queue=queue)
            except pika.exceptions.ChannelClosedByBroker as exc:
                self.close()  # the broker closed the channel; start afresh next time
                if exc.reply_code != 404:
                    raise BrokerUnavailable(f"RabbitMQ refused to delete {queue!r}") from exc

        self._retrying(op)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self._reply_queue = None
        self._reply_bindings.clear()
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                LOG.debug("closing a broken connection failed", exc_info=True)


@dataclass(frozen=True)
class Delivery:
    body: bytes
    message_id: str | None = None
    reply_to: str | None = None
    correlation_id: str | None = None
    redelivered: bool = False
    # How often the broker handed this message out before (quorum queues count it).
    delivery_count: int = 0


class Requeue(Exception):
    """Raised by a handler: this attempt failed; deliver the message again (to anyone)."""


Handler = Callable[[Delivery], bytes | None]


def _wake(connection: Any) -> None:
    """End the wait of a connection's loop now (a callback it runs as soon as it can)."""
    try:
        connection.add_callback_threadsafe(lambda: None)
    except CONNECTION_ERRORS:  # closed meanwhile: its loop has ended anyway
        pass


class Consumer:
    """Consumes one queue; handlers run on worker threads, acks on the I/O thread.

    A message is acked only after its handler returned (its outcome is recorded), so a
    consumer that dies mid-task leaves the message for the next one. A handler that raises
    `Requeue` has the message delivered again; any other exception drops it (logged). A
    handler's return value, if any, is the reply, published to `reply_exchange` with the
    request's reply-to as routing key.
    """

    # Seconds between the loop's looks whether it was told to stop (stop() wakes it too).
    LOOK_EVERY = 0.5

    def __init__(
        self,
        url: str,
        queue: str,
        handler: Handler,
        workers: int = 1,
        reconnect_delay: float = 2.0,
        heartbeat: int = 30,
        declare: Callable[[Any], None] | None = None,
        reply_exchange: str = DEFAULT_EXCHANGE,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self._url = url
        self._heartbeat = heartbeat
        self._queue = queue
        self._handler = handler
        self._workers = workers
        self._reconnect_delay = reconnect_delay
        self._declare = declare
        self._reply_exchange = reply_exchange
        self._executor = executor
        self._stopping = threading.Event()
        self._connection: Any = None  # the one consuming now
        self.ready = threading.Event()

    def stop(self) -> None:
        """Stop consuming: at once, not at the loop's next look. The loop is woken from a
        thread of its own, as this may run in a signal handler on the loop's thread, which
        may hold the lock the wake takes."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            threading.Thread(target=_wake, args=(connection,), daemon=True).start()

    def run(self) -> None:
        """Consume until `stop()`; reconnects after a lost connection."""
        if self._executor is not None:
            self._loop(self._executor)
            return
        with ThreadPoolExecutor(self._workers, thread_name_prefix=self._queue) as pool:
            self._loop(pool)

    def _loop(self, pool: ThreadPoolExecutor) -> None:
        while not self._stopping.is_set():
            try:
                self._consume(pool)
            except CONNECTION_ERRORS as exc:
                self.ready.clear()
                LOG.warning("lost RabbitMQ on %s (%s); reconnecting", self._queue, exc)
                self._stopping.wait(self._reconnect_delay)

    def _consume(self, pool: ThreadPoolExecutor) -> None:
        connection = pika.BlockingConnection(connection_parameters(self._url, self._heartbeat))
        self._connection = connection
        try:
            channel = connection.channel()
            if self._declare is not None:
                self._declare(channel)
            channel.basic_qos(prefetch_count=self._workers)

            def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
                headers = props.headers or {}
                delivery = Delivery(
                    body=body,
                    message_id=props.message_id,
                    reply_to=props.reply_to,
                    correlation_id=props.correlation_id,
                    redelivered=bool(method.redelivered),
                    delivery_count=int(headers.get("x-delivery-count", 0) or 0),
                )
                pool.submit(self._handle, connection, ch, method.delivery_tag, delivery)

            channel.basic_consume(self._queue, on_message)
            self.ready.set()
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=self.LOOK_EVERY)
        finally:
            self._connection = None
            if connection.is_open:
                connection.close()

    def _handle(self, connection: Any, channel: Any, tag: int, delivery: Delivery) -> None:
        reply: bytes | None = None
        requeue = False
        try:
            reply = self._handler(delivery)
        except Requeue:
            requeue = True
        except Exception:
            LOG.exception("handler failed on %s; the message is dropped", self._queue)

        def finish() -> None:
            if delivery.reply_to and reply is not None:
                channel.basic_publish(
                    exchange=self._reply_exchange,
                    routing_key=delivery.reply_to,
                    body=reply,
                    properties=pika.BasicProperties(correlation_id=delivery.correlation_id),
                )
            if requeue:
                channel.basic_nack(delivery_tag=tag, requeue=True)
            else:
                channel.basic_ack(delivery_tag=tag)

        try:
            connection.add_callback_threadsafe(finish)
        except CONNECTION_ERRORS:
            LOG.warning(
                "connection gone before ack on %s; the message will be redelivered", self._queue
            )
