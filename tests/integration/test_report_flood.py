"""One guest floods the conductor; every other guest's heartbeats still land.

A deployment on a private RabbitMQ node with three instances built through the API. With
the broker account and key of one of them (what a tenant with root on it finds), a
process publishes its sealed heartbeats as fast as the flood's rate says, for the flood's
length, while the test watches the two others through the API: they must stay ACTIVE and
HEALTHY all along, their heartbeats recorded on time. The flood shows in the metrics, and
once it ends the flooder's own instance is HEALTHY again.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from tests import support
from tests.broker_node import BrokerNode
from tests.deployments import PROJECT, create, deployment, start, statuses, store, wait_until
from trove_wire import seal, topology
from trove_wire.envelope import Envelope

# It measures a rate: scripts/test runs it by itself, after the tests that share the cores.
pytestmark = [pytest.mark.integration, pytest.mark.alone]

FLOOD_RATE = 10_000  # reports a second
FLOOD_SECONDS = 10.0  # twice the heartbeats' expiry
# Distinct sealed heartbeats the flood cycles through (sealing each anew would measure
# this test's CPU, not the conductor).
FLOOD_BODIES = 2_000
TICK = 0.005  # the flood publishes what is due every 5 ms
# The test deployment's heartbeat interval is 1 s and its expiry 5 s (tests.support).
HEARTBEAT_EXPIRY = 5.0


@pytest.fixture(scope="module")
def world(shared_node: BrokerNode) -> Iterator[dict[str, Any]]:
    service = deployment(shared_node)
    started: list[support.Service] = []
    start(started, service)
    token = service.token(PROJECT)
    ids = [create(service, token, name, datastore="redis") for name in ("flood", "b", "c")]
    for instance_id in ids:
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
    yield {"service": service, "token": token, "flooder": ids[0], "others": ids[1:]}
    service.cleanup()


def _flood(config: dict[str, Any], output: Any) -> None:
    """In a process of its own (the test's polling must not slow it): publish the guest's
    sealed heartbeats over and over at FLOOD_RATE for FLOOD_SECONDS, without confirms, as
    a hostile guest would; put how many it sent, and how long the broker took to read them
    all (until it answered the close that follows the last), on `output`.

    pika's asynchronous adapter: the blocking one waits on the socket after each publish,
    which on this machine caps one process near the flood's rate."""
    key = seal.decode_key(config["key"])
    party = seal.report_from(config["instance_id"])
    bodies = [
        seal.seal(key, party, Envelope.new("heartbeat", _beat(n)).to_json())
        for n in range(FLOOD_BODIES)
    ]
    exchange = topology.guest_exchange(config["instance_id"])
    progress = {"sent": 0, "started": 0.0, "seconds": 0.0}
    connection: pika.SelectConnection

    def on_channel(channel: Any) -> None:
        progress["started"] = time.monotonic()

        def tick() -> None:
            elapsed = time.monotonic() - progress["started"]
            if elapsed >= FLOOD_SECONDS:
                connection.close()
                return
            due = min(int((elapsed + TICK) * FLOOD_RATE), int(FLOOD_SECONDS * FLOOD_RATE))
            while progress["sent"] < due:
                body = bodies[int(progress["sent"]) % FLOOD_BODIES]
                channel.basic_publish(exchange, topology.REPORTS, body)
                progress["sent"] += 1
            connection.ioloop.call_later(TICK, tick)

        tick()

    def on_closed(*_: Any) -> None:
        progress["seconds"] = time.monotonic() - progress["started"]
        connection.ioloop.stop()

    connection = pika.SelectConnection(
        pika.URLParameters(config["transport_url"]),
        on_open_callback=lambda opened: opened.channel(on_open_callback=on_channel),
        on_open_error_callback=lambda *_: connection.ioloop.stop(),
        on_close_callback=on_closed,
    )
    connection.ioloop.start()
    output.put({"sent": int(progress["sent"]), "seconds": progress["seconds"]})


def _beat(n: int) -> dict[str, Any]:
    return {"operating_status": "HEALTHY", "disk_used_bytes": n}


def _heartbeat_age(service: support.Service, instance_id: str) -> float:
    """Seconds since the instance's last recorded heartbeat."""
    with store(service) as db:
        received = db.execute(
            "SELECT last_received_at FROM service_status WHERE instance_id = ?", (instance_id,)
        ).fetchone()[0]
    return time.time() - (received or 0)


def test_one_guests_flood_leaves_the_others_healthy(world: dict[str, Any]) -> None:
    service: support.Service = world["service"]
    token, flooder, others = world["token"], world["flooder"], world["others"]
    config = json.loads((service.state_dir / "instances" / flooder / "guest.json").read_text())
    rate_limited_before = support.metric(service, "trove_reports_rate_limited_total")

    context = multiprocessing.get_context("spawn")
    output = context.Queue()
    flood = context.Process(target=_flood, args=(config, output))
    flood.start()
    shown: list[dict[str, str]] = []
    oldest_heartbeat = 0.0
    full_queues_seen = 0.0
    try:
        while flood.is_alive():
            shown.append(statuses(service, token, others))
            oldest_heartbeat = max(
                oldest_heartbeat, *(_heartbeat_age(service, other) for other in others)
            )
            full_queues_seen = max(
                full_queues_seen, support.metric(service, "trove_report_queues_full")
            )
            time.sleep(0.5)
        flood.join(10)
    finally:
        if flood.is_alive():
            flood.kill()
    report = output.get(timeout=5)
    sent, seconds = report["sent"], report["seconds"]
    rate_limited = support.metric(service, "trove_reports_rate_limited_total")
    rate_limited -= rate_limited_before
    print(
        f"{report}; rate-limited {rate_limited:.0f}; full queues seen {full_queues_seen:.0f};"
        f" oldest heartbeat {oldest_heartbeat:.2f} s"
    )

    # The flood was what it says: 10,000 reports a second for 10 s.
    assert seconds >= FLOOD_SECONDS - 0.5 and sent / seconds >= FLOOD_RATE * 0.95, report
    # The others stayed ACTIVE and HEALTHY, looked at every half second all along.
    assert len(shown) >= FLOOD_SECONDS, shown
    unhealthy = [s for s in shown if set(s.values()) != {"ACTIVE/HEALTHY"}]
    assert unhealthy == [], unhealthy
    assert oldest_heartbeat < HEARTBEAT_EXPIRY, oldest_heartbeat
    # The flood shows: dropped unopened by the conductor, far beyond what the guest's rate
    # (5 a second, 30 at once) lets through in 10 s. What the conductor did not drain in
    # time the broker refused once the flooder's queue was full (how much depends on the
    # machine's load: test_bus and the conductor's unit tests pin that part down).
    assert rate_limited > FLOOD_SECONDS * 100
    # The flood over, its guest's own heartbeats land again.
    service.wait_for(token, PROJECT, flooder, support.active_and_healthy, timeout=30)
    wait_until(
        lambda: support.metric(service, "trove_reports_queued") < 50, 30, "the backlog drained"
    )
