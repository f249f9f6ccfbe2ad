"""The bus against a real RabbitMQ: confirmed casts, calls, timeouts, long handlers,
redelivery and dead-lettering."""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest

from tests import support
from tests.broker_node import BrokerNode
from trove_svc.bus.broker import REPORT_QUEUE_POLICY, Account, BrokerAdmin, report_queue_policy
from trove_svc.conductor.intake import ReportIntake
from trove_svc.process import metrics
from trove_wire import topology
from trove_wire.amqp import (
    BrokerUnavailable,
    CallTimedOut,
    Consumer,
    Delivery,
    NoConsumerQueue,
    Publisher,
    Requeue,
)

pytestmark = pytest.mark.integration


def _queue() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


@pytest.fixture
def publisher(transport_url: str) -> Iterator[Publisher]:
    pub = Publisher(transport_url)
    yield pub
    pub.close()


def _declare(publisher: Publisher, queue: str, **arguments: object) -> None:
    publisher.declare(lambda ch: ch.queue_declare(queue, durable=True, arguments=arguments or None))


def _run(consumer: Consumer | ReportIntake) -> threading.Thread:
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
    _declare(publisher, queue)
    publisher.publish("", queue, b"ping-1", "m-1")
    assert _depth(transport_url, queue) == (1, 0)
    received: list[Delivery] = []
    consumer = Consumer(transport_url, queue, lambda d: received.append(d) or None)
    thread = _run(consumer)
    _wait(lambda: len(received) == 1)
    assert received[0].body == b"ping-1" and received[0].message_id == "m-1"
    _wait(lambda: _depth(transport_url, queue)[0] == 0)
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


def test_a_stopped_consumer_ends_at_once(
    transport_url: str, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not at its loop's next look whether it was told to stop (every half second; a
    minute here): a guest agent's stop, which every delete and restart of its instance
    waits for, ends as soon as it is asked."""
    monkeypatch.setattr(Consumer, "LOOK_EVERY", 60.0)
    queue = _queue()
    _declare(publisher, queue)
    for _ in range(3):
        consumer = Consumer(transport_url, queue, lambda d: None)
        thread = _run(consumer)
        time.sleep(0.05)  # inside the loop's wait
        consumer.stop()
        thread.join(10)
        assert not thread.is_alive()
    publisher.delete_queue(queue)


def test_publishing_where_nothing_receives_fails_at_once(publisher: Publisher) -> None:
    with pytest.raises(NoConsumerQueue):
        publisher.publish("", _queue(), b"lost", "m-1")


def test_call_gets_the_reply(transport_url: str, publisher: Publisher) -> None:
    queue = _queue()
    _declare(publisher, queue)
    consumer = Consumer(transport_url, queue, lambda d: b"echo:" + d.body)
    thread = _run(consumer)
    reply = publisher.call("", queue, b"hello", "c-1", timeout=5)
    assert reply == b"echo:hello"
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


def test_call_without_an_answer_times_out(publisher: Publisher) -> None:
    queue = _queue()
    _declare(publisher, queue)  # a queue nobody consumes
    started = time.monotonic()
    with pytest.raises(CallTimedOut):
        publisher.call("", queue, b"x", "c-1", timeout=0.5)
    assert time.monotonic() - started < 3
    publisher.delete_queue(queue)


def test_call_to_a_missing_queue_fails_at_once(publisher: Publisher) -> None:
    with pytest.raises(NoConsumerQueue):
        publisher.call("", _queue(), b"x", "c-1", timeout=5)


def test_a_long_handler_does_not_starve_heartbeats(
    transport_url: str, publisher: Publisher
) -> None:
    """A handler that runs for several heartbeat timeouts still acks on the same
    connection: the I/O thread kept answering heartbeats while the worker ran."""
    queue = _queue()
    _declare(publisher, queue)
    calls: list[float] = []
    finished = threading.Event()

    def slow(delivery: Delivery) -> None:
        calls.append(time.monotonic())
        time.sleep(7)  # more than twice the 2 s heartbeat below
        finished.set()

    consumer = Consumer(transport_url, queue, slow, heartbeat=2, reconnect_delay=0.5)
    thread = _run(consumer)
    publisher.publish("", queue, b"slow", "m-1")
    assert finished.wait(15)
    time.sleep(3)  # a lost connection would have had the message redelivered by now
    assert len(calls) == 1
    assert _depth(transport_url, queue) == (0, 1)
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


def test_a_failing_handler_drops_the_message(transport_url: str, publisher: Publisher) -> None:
    queue = _queue()
    _declare(publisher, queue)
    publisher.publish("", queue, b"garbage", "m-1")
    handled: list[Delivery] = []

    def broken(delivery: Delivery) -> None:
        handled.append(delivery)
        raise ValueError("cannot read this")

    consumer = Consumer(transport_url, queue, broken)
    thread = _run(consumer)
    _wait(lambda: _depth(transport_url, queue) == (0, 1))
    time.sleep(0.5)
    assert len(handled) == 1
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)


@pytest.fixture
def own_vhost() -> Iterator[str]:
    vhost = support.create_vhost()
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    support.delete_vhost(vhost)


def test_a_message_that_fails_every_time_is_dead_lettered(own_vhost: str) -> None:
    """The task manager's queue: redelivered up to its limit, then to the dead letters."""
    transport_url = own_vhost
    publisher = Publisher(transport_url)
    publisher.declare(topology.declare_control_plane)
    publisher.publish("", topology.TASKMANAGER, b"poison", "m-1")
    counts: list[int] = []

    def always_fails(delivery: Delivery) -> None:
        counts.append(delivery.delivery_count)
        raise Requeue

    consumer = Consumer(transport_url, topology.TASKMANAGER, always_fails)
    thread = _run(consumer)
    _wait(lambda: _depth(transport_url, topology.TASKMANAGER_DEAD)[0] == 1)
    consumer.stop()
    thread.join(5)
    publisher.close()
    assert len(counts) == topology.MAX_ATTEMPTS
    assert counts == sorted(counts)
    assert _depth(transport_url, topology.TASKMANAGER)[0] == 0


def _guest_reports_queue(amqp_url: str, instance_id: str, backlog: int) -> Publisher:
    """A guest's queues and exchange, under the policy `trove-svc setup` sets."""
    vhost = amqp_url.rsplit("/", 1)[1]
    admin = BrokerAdmin(support.MANAGEMENT, Account("guest", "guest"))
    admin.set_policy(vhost, REPORT_QUEUE_POLICY, report_queue_policy(backlog))
    publisher = Publisher(amqp_url)
    publisher.declare(topology.declare_control_plane)
    publisher.declare(lambda ch: topology.declare_guest(ch, instance_id))
    return publisher


def _count(counter: object) -> float:
    return float(counter.collect()[0].samples[0].value)  # type: ignore[attr-defined]


def test_a_report_that_fails_every_time_is_dead_lettered(own_vhost: str) -> None:
    """A guest's reports queue: the conductor's intake has a report delivered again up to
    its limit, then the broker keeps it in the dead letters, and the intake counts it."""
    publisher = _guest_reports_queue(own_vhost, "i-1", backlog=10)
    publisher.publish(topology.guest_exchange("i-1"), topology.REPORTS, b"poison", "m-1")
    attempts: list[tuple[str, int]] = []

    def always_fails(instance_id: str, delivery: Delivery) -> None:
        attempts.append((instance_id, delivery.delivery_count))
        raise RuntimeError("the store is down")

    dead_before = _count(metrics.get().reports_dead_lettered)
    intake = ReportIntake(own_vhost, always_fails, admit=lambda *_: True, instances=lambda: ["i-1"])
    thread = _run(intake)
    _wait(lambda: _depth(own_vhost, topology.REPORTS_DEAD)[0] == 1)
    intake.stop()
    thread.join(5)
    publisher.close()
    assert attempts == [("i-1", n) for n in range(topology.MAX_ATTEMPTS)]
    assert _depth(own_vhost, topology.reports_queue("i-1"))[0] == 0
    assert _count(metrics.get().reports_dead_lettered) == dead_before + 1


def test_a_full_reports_queue_refuses_new_reports_and_keeps_the_old(own_vhost: str) -> None:
    publisher = _guest_reports_queue(own_vhost, "i-1", backlog=10)
    refused = []
    for n in range(25):
        try:
            publisher.publish(topology.guest_exchange("i-1"), topology.REPORTS, b"%d" % n, str(n))
        except BrokerUnavailable:
            refused.append(n)
    kept = []
    connection = pika.BlockingConnection(pika.URLParameters(own_vhost))
    channel = connection.channel()
    while (body := channel.basic_get(topology.reports_queue("i-1"), auto_ack=True)[2]) is not None:
        kept.append(int(body))
    connection.close()
    publisher.close()
    # The oldest are kept, the newest refused. A quorum queue applies its limit once it is
    # over it, so it takes one report past the backlog.
    assert len(kept) in (10, 11)
    assert kept == list(range(len(kept)))
    assert refused == list(range(len(kept), 25))


def test_one_guests_flood_leaves_the_others_reports_on_time(own_vhost: str) -> None:
    """The intake consumes each guest's queue with a prefetch of its own: while one
    guest's queue is full, another's reports are handled as they come."""
    publisher = _guest_reports_queue(own_vhost, "flood", backlog=500)
    publisher.declare(lambda ch: topology.declare_guest(ch, "quiet"))
    handled: dict[str, list[float]] = {"flood": [], "quiet": []}

    def slow(instance_id: str, delivery: Delivery) -> None:
        handled[instance_id].append(time.monotonic())
        time.sleep(0.01)  # opening and recording a report takes time

    for n in range(500):
        publisher.publish(topology.guest_exchange("flood"), topology.REPORTS, b"x", str(n))
    intake = ReportIntake(
        own_vhost, slow, admit=lambda *_: True, instances=lambda: ["flood", "quiet"]
    )
    thread = _run(intake)
    sent = []
    for n in range(5):
        sent.append(time.monotonic())
        publisher.publish(topology.guest_exchange("quiet"), topology.REPORTS, b"q", f"q{n}")
        time.sleep(0.1)
    _wait(lambda: len(handled["quiet"]) == 5)
    intake.stop()
    thread.join(5)
    publisher.close()
    # 500 reports of the flood take 5 s to handle; the quiet guest's wait for few of them.
    assert len(handled["flood"]) < 200
    assert max(got - put for got, put in zip(handled["quiet"], sent, strict=True)) < 1.5


def test_the_intake_follows_guests_queues_as_they_come_and_go(
    own_vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An instance whose queue is made after the intake started (its build had not begun)
    is consumed once the queue is there, and looking for it till then logs nothing; a
    deleted one's consumer goes with its queue."""
    publisher = _guest_reports_queue(own_vhost, "early", backlog=10)
    handled: list[str] = []
    forgotten: list[str] = []
    intake = ReportIntake(
        own_vhost,
        lambda instance_id, _delivery: handled.append(instance_id),
        admit=lambda *_: True,
        instances=lambda: ["early", "late"],
        forget=forgotten.append,
    )
    thread = _run(intake)
    time.sleep(1.5)  # the intake looked for the late queue, and found none
    assert "no queue" not in caplog.text
    publisher.declare(lambda ch: topology.declare_guest(ch, "late"))
    publisher.publish(topology.guest_exchange("late"), topology.REPORTS, b"late", "l-1")
    _wait(lambda: handled == ["late"])
    publisher.declare(lambda ch: topology.delete_guest(ch, "early"))
    _wait(lambda: forgotten == ["early"])
    assert _depth(own_vhost, topology.reports_queue("late"))[1] == 1
    intake.stop()
    thread.join(5)
    publisher.close()


def test_a_call_nobody_answers_becomes_a_domain_error(transport_url: str, tmp_path: Path) -> None:
    from trove_svc.bus.client import Bus
    from trove_svc.domain import catalog, errors
    from trove_svc.security.keys import KeyRing, ServiceKeys
    from trove_svc.store.db import open_store
    from trove_svc.store.models import DatastoreVersion, Instance
    from trove_wire.contract import ListDatabases
    from trove_wire.envelope import Context
    from trove_wire.seal import new_key

    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    keys = ServiceKeys(new_key())
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    Instance.insert(
        id="i-1",
        name="x",
        project_id="p",
        datastore_version=DatastoreVersion.get(),
        flavor="1",
        volume_size=1,
        status="ACTIVE",
        created_at=0,
        updated_at=0,
        guest_key=keys.new_instance_key("i-1")[1],
    ).execute()
    support.declare_control_plane(transport_url)
    bus = Bus(transport_url, KeyRing(keys))
    bus.add_guest_queues("i-1")  # a guest queue nobody consumes
    with pytest.raises(errors.ServiceUnavailable, match="did not answer list_databases"):
        bus.call_guest("i-1", ListDatabases(), Context(), timeout=0.3)
    bus.delete_guest_queues("i-1")
    bus.close()
    database.close()


def test_a_connection_the_broker_closed_while_idle_is_replaced_before_a_write(
    shared_node: BrokerNode, caplog: pytest.LogCaptureFixture
) -> None:
    """What an API worker meets after a long quiet spell: the broker closed its connection
    (here through the management API, as it does past missed heartbeats). The next publish
    reads that first and goes out on a new connection: delivered, no traceback logged."""
    vhost = f"test-idle-{uuid.uuid4().hex[:8]}"
    assert shared_node.api("PUT", f"/api/vhosts/{vhost}")[0] in (201, 204)
    permissions = {"configure": ".*", "write": ".*", "read": ".*"}
    user_path = f"/api/permissions/{vhost}/{shared_node.admin_user}"
    assert shared_node.api("PUT", user_path, permissions)[0] in (201, 204)
    publisher = Publisher(shared_node.amqp_url(vhost=vhost))
    try:
        queue = _queue()
        _declare(publisher, queue)
        publisher.publish("", queue, b"before", "m-1")

        def ours() -> list[str]:
            listed = shared_node.api("GET", f"/api/vhosts/{vhost}/connections")[1]
            return [str(c["name"]) for c in listed]

        # (The management API lists connections as its statistics see them: seconds late.)
        _wait(lambda: bool(ours()), timeout=90)
        for name in ours():
            quoted = urllib.parse.quote(name, safe="")
            assert shared_node.api("DELETE", f"/api/connections/{quoted}")[0] == 204
        _wait(lambda: not ours(), timeout=90)

        caplog.set_level(logging.INFO)
        publisher.publish("", queue, b"after", "m-2")
        assert "RabbitMQ closed an idle connection" in caplog.text
        tracebacks = [r for r in caplog.records if r.exc_info]
        assert tracebacks == [], [r.getMessage() for r in tracebacks]
        depth: list[int] = []
        publisher.declare(
            lambda ch: depth.append(ch.queue_declare(queue, passive=True).method.message_count)
        )
        assert depth == [2]
    finally:
        publisher.close()
        shared_node.api("DELETE", f"/api/vhosts/{vhost}")
