"""The bus against a real RabbitMQ: confirmed casts, calls, timeouts, long handlers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pika
import pytest

from trove_wire.amqp import CallTimedOut, Consumer, NoConsumerQueue, Publisher
from trove_wire.envelope import Envelope, Reply

pytestmark = pytest.mark.integration


def _queue() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publisher(transport_url: str) -> Iterator[Publisher]:
    pub = Publisher(transport_url)
    yield pub
    pub.close()


def _run(consumer: Consumer) -> threading.Thread:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    assert consumer.ready.wait(10)
    return thread


def _wait(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _depth(transport_url: str, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, as the broker sees it."""
    connection = pika.BlockingConnection(pika.URLParameters(transport_url))
    try:
        ok = connection.channel().queue_declare(queue, passive=True).method
        return ok.message_count, ok.consumer_count
    finally:
        connection.close()


def test_cast_is_durable_until_a_consumer_takes_it(
    transport_url: str, publisher: Publisher
) -> None:
    queue = _queue()
    publisher.cast(queue, Envelope.new("ping", {"n": 1}))
    assert _depth(transport_url, queue) == (1, 0)
    received: list[Envelope] = []
    consumer = Consumer(transport_url, queue, lambda env: received.append(env) or None)
    thread = _run(consumer)
    _wait(lambda: len(received) == 1)
    assert received[0].method == "ping" and received[0].args == {"n": 1}
    _wait(lambda: _depth(transport_url, queue)[0] == 0)
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


def test_call_gets_the_reply(transport_url: str, publisher: Publisher) -> None:
    queue = _queue()
    consumer = Consumer(transport_url, queue, lambda env: Reply(result={"echo": env.args["word"]}))
    thread = _run(consumer)
    reply = publisher.call(queue, Envelope.new("echo", {"word": "hello"}), timeout=5)
    assert reply.result == {"echo": "hello"}
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


def test_call_without_an_answer_times_out(transport_url: str, publisher: Publisher) -> None:
    queue = _queue()
    publisher.declare(queue)  # a queue nobody consumes
    started = time.monotonic()
    with pytest.raises(CallTimedOut):
        publisher.call(queue, Envelope.new("echo", {}), timeout=0.5)
    assert time.monotonic() - started < 3
    publisher.delete_queue(queue)


def test_call_to_a_missing_queue_fails_at_once(publisher: Publisher) -> None:
    with pytest.raises(NoConsumerQueue):
        publisher.call(_queue(), Envelope.new("echo", {}), timeout=5)


def test_a_long_handler_does_not_starve_heartbeats(
    transport_url: str, publisher: Publisher
) -> None:
    """A handler that runs for several heartbeat timeouts still acks on the same
    connection: the I/O thread kept answering heartbeats while the worker ran."""
    queue = _queue()
    calls: list[float] = []
    finished = threading.Event()

    def slow(envelope: Envelope) -> None:
        calls.append(time.monotonic())
        time.sleep(7)  # more than twice the 2 s heartbeat below
        finished.set()

    consumer = Consumer(transport_url, queue, slow, heartbeat=2, reconnect_delay=0.5)
    thread = _run(consumer)
    publisher.cast(queue, Envelope.new("slow", {}))
    assert finished.wait(15)
    time.sleep(3)  # a lost connection would have had the message redelivered by now
    assert len(calls) == 1
    assert _depth(transport_url, queue) == (0, 1)
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


def test_malformed_message_is_dropped_not_redelivered(
    transport_url: str, publisher: Publisher
) -> None:
    queue = _queue()
    publisher.declare(queue)
    connection = pika.BlockingConnection(pika.URLParameters(transport_url))
    connection.channel().basic_publish("", queue, b"garbage")
    connection.close()
    handled: list[Envelope] = []
    consumer = Consumer(transport_url, queue, lambda env: handled.append(env) or None)
    thread = _run(consumer)
    _wait(lambda: _depth(transport_url, queue) == (0, 1))
    assert handled == []
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


def test_a_call_nobody_answers_becomes_a_domain_error(transport_url: str) -> None:
    from trove_svc import errors
    from trove_svc.bus.client import Bus
    from trove_wire.envelope import Context

    bus = Bus(transport_url)
    queue = _queue()
    bus.cast(queue, "nothing", {}, Context())  # declares a queue nobody consumes
    with pytest.raises(errors.ServiceUnavailable, match="did not answer list_databases"):
        bus.call(queue, "list_databases", {}, Context(), timeout=0.3)
    bus.delete_queue(queue)
    bus.close()
