"""RabbitMQ plumbing on pika: publish with confirms, call over direct reply-to, consume.

pika's BlockingConnection is single-threaded and sends no heartbeats while a callback
runs, so a `Consumer` hands each message to a worker thread and brings the ack (and any
reply) back onto the connection's thread with `add_callback_threadsafe`. A `Publisher`
owns its own connection: use one per thread.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pika
import pika.exceptions

from trove_wire.envelope import Envelope, MalformedMessage, Reply

LOG = logging.getLogger(__name__)

DIRECT_REPLY_TO = "amq.rabbitmq.reply-to"
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
)


class BrokerUnavailable(ConnectionError):
    """RabbitMQ could not be reached, or refused the message."""


class NoConsumerQueue(LookupError):
    """A message was published to a queue that does not exist (nobody to deliver to)."""


class CallTimedOut(TimeoutError):
    """A call got no reply within its timeout."""


def connection_parameters(url: str, heartbeat: int = 30) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 30
    params.connection_attempts = 1
    return params


class Publisher:
    """Casts (persistent, confirmed) and calls (direct reply-to) on one connection.

    Not thread-safe; a broken connection is replaced once per operation.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._declared: set[str] = set()

    def _ensure(self) -> Any:
        if self._connection is None or self._connection.is_closed:
            try:
                self._connection = pika.BlockingConnection(connection_parameters(self._url))
            except CONNECTION_ERRORS as exc:
                raise BrokerUnavailable(f"cannot reach RabbitMQ: {exc}") from exc
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            self._declared.clear()
        return self._channel

    def _retrying(self, operation: Callable[[], Any]) -> Any:
        for attempt in (1, 2):
            try:
                return operation()
            except CONNECTION_ERRORS as exc:
                self.close()
                if attempt == 2:
                    raise BrokerUnavailable(f"RabbitMQ failed: {exc}") from exc
        raise AssertionError("unreachable")

    def declare(self, queue: str) -> None:
        """Declare a durable queue (idempotent); casts to it survive a broker restart."""

        def op() -> None:
            channel = self._ensure()
            if queue not in self._declared:
                channel.queue_declare(queue=queue, durable=True)
                self._declared.add(queue)

        self._retrying(op)

    def cast(self, queue: str, envelope: Envelope, declare: bool = True) -> None:
        """Publish persistently and wait for the broker's confirm."""
        if declare:
            self.declare(queue)

        def op() -> None:
            channel = self._ensure()
            try:
                channel.basic_publish(
                    exchange="",
                    routing_key=queue,
                    body=envelope.to_json(),
                    properties=pika.BasicProperties(
                        delivery_mode=pika.DeliveryMode.Persistent,
                        content_type="application/json",
                        message_id=envelope.id,
                    ),
                    mandatory=True,
                )
            except pika.exceptions.UnroutableError as exc:
                raise NoConsumerQueue(f"no queue {queue!r}") from exc
            except pika.exceptions.NackError as exc:
                raise BrokerUnavailable(f"RabbitMQ refused the message to {queue!r}") from exc

        self._retrying(op)

    def call(self, queue: str, envelope: Envelope, timeout: float) -> Reply:
        """Send a request over direct reply-to and wait for its reply."""

        def op() -> Reply:
            self._ensure()
            assert self._connection is not None
            channel = self._connection.channel()
            try:
                return self._call_on(channel, queue, envelope, timeout)
            finally:
                if channel.is_open:
                    channel.close()

        result: Reply = self._retrying(op)
        return result

    def _call_on(self, channel: Any, queue: str, envelope: Envelope, timeout: float) -> Reply:
        correlation_id = uuid.uuid4().hex
        replies: list[Reply] = []

        def on_reply(_ch: Any, _method: Any, props: Any, body: bytes) -> None:
            if props.correlation_id == correlation_id:
                replies.append(Reply.from_json(body))

        channel.basic_consume(DIRECT_REPLY_TO, on_reply, auto_ack=True)
        channel.confirm_delivery()
        try:
            channel.basic_publish(
                exchange="",
                routing_key=queue,
                body=envelope.to_json(),
                properties=pika.BasicProperties(
                    reply_to=DIRECT_REPLY_TO,
                    correlation_id=correlation_id,
                    content_type="application/json",
                    expiration=str(int(timeout * 1000)),
                    message_id=envelope.id,
                ),
                mandatory=True,
            )
        except pika.exceptions.UnroutableError as exc:
            raise NoConsumerQueue(f"no queue {queue!r}") from exc
        assert self._connection is not None
        deadline = time.monotonic() + timeout
        while not replies:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CallTimedOut(f"no reply from {queue!r} within {timeout:g}s")
            self._connection.process_data_events(time_limit=min(remaining, 0.5))
        return replies[0]

    def delete_queue(self, queue: str) -> None:
        def op() -> None:
            channel = self._ensure()
            channel.queue_delete(queue=queue)
            self._declared.discard(queue)

        self._retrying(op)

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except CONNECTION_ERRORS:
                LOG.debug("closing a broken connection failed", exc_info=True)


Handler = Callable[[Envelope], Reply | None]


class Consumer:
    """Consumes one durable queue; handlers run on worker threads, acks on the I/O thread.

    A message is acked only after its handler returned (its outcome is recorded), so a
    consumer that dies mid-task leaves the message for the next one. A message that is
    not an envelope is acked and dropped: retrying it could never succeed.
    """

    def __init__(
        self,
        url: str,
        queue: str,
        handler: Handler,
        workers: int = 1,
        reconnect_delay: float = 2.0,
        heartbeat: int = 30,
    ) -> None:
        self._url = url
        self._heartbeat = heartbeat
        self._queue = queue
        self._handler = handler
        self._workers = workers
        self._reconnect_delay = reconnect_delay
        self._stopping = threading.Event()
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Consume until `stop()`; reconnects after a lost connection."""
        with ThreadPoolExecutor(self._workers, thread_name_prefix=self._queue) as pool:
            while not self._stopping.is_set():
                try:
                    self._consume(pool)
                except CONNECTION_ERRORS as exc:
                    self.ready.clear()
                    LOG.warning("lost RabbitMQ on %s (%s); reconnecting", self._queue, exc)
                    self._stopping.wait(self._reconnect_delay)

    def _consume(self, pool: ThreadPoolExecutor) -> None:
        connection = pika.BlockingConnection(connection_parameters(self._url, self._heartbeat))
        try:
            channel = connection.channel()
            channel.queue_declare(queue=self._queue, durable=True)
            channel.basic_qos(prefetch_count=self._workers)

            def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
                pool.submit(self._handle, connection, ch, method.delivery_tag, props, body)

            channel.basic_consume(self._queue, on_message)
            self.ready.set()
            while not self._stopping.is_set():
                connection.process_data_events(time_limit=0.5)
        finally:
            if connection.is_open:
                connection.close()

    def _handle(self, connection: Any, channel: Any, tag: int, props: Any, body: bytes) -> None:
        reply: Reply | None
        try:
            reply = self._handler(Envelope.from_json(body))
        except MalformedMessage as exc:
            LOG.error("dropped a malformed message on %s: %s", self._queue, exc)
            reply = Reply(error_type="MalformedMessage", error_message=str(exc))
        except Exception as exc:
            LOG.exception("handler failed on %s", self._queue)
            reply = Reply(error_type=type(exc).__name__, error_message=str(exc))

        def finish() -> None:
            if props.reply_to and reply is not None:
                channel.basic_publish(
                    exchange="",
                    routing_key=props.reply_to,
                    body=reply.to_json(),
                    properties=pika.BasicProperties(correlation_id=props.correlation_id),
                )
            channel.basic_ack(delivery_tag=tag)

        try:
            connection.add_callback_threadsafe(finish)
        except CONNECTION_ERRORS:
            LOG.warning(
                "connection gone before ack on %s; the message will be redelivered", self._queue
            )
