"""A guest sync call through the API beside a bare request-reply through the same broker.

Runs a private trove-svc, makes a PostgreSQL instance, and times `GET
/instances/{id}/databases` (HTTP, token check, the store, a sealed call to the guest, the
guest's query of its datastore, the sealed reply) over N calls. In the same run it times a
bare request-reply through the same broker (a consumer that answers at once, a caller that
publishes with confirms and waits on its reply queue), with no work at either end. Prints
p50 and p95 of both and the difference of the p50s (the aim: within 5 ms), and for scale
`GET /instances/{id}`, which asks no guest.

    .venv/bin/python bench/guest_call.py [--calls 200]
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import support
from trove_wire.amqp import Consumer, Publisher


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


def api_calls(service: support.Service, token: str, path: str, calls: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    times = []
    for number in range(calls + 20):
        started = time.perf_counter()
        connection.request("GET", path, headers={"X-Auth-Token": token})
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        if number >= 20:  # the first ones warm connections and caches up
            times.append(time.perf_counter() - started)
    connection.close()
    return times


def bare_calls(url: str, calls: int) -> list[float]:
    queue = f"bench.echo.{uuid.uuid4().hex[:8]}"
    publisher = Publisher(url)
    publisher.declare(lambda ch: ch.queue_declare(queue, durable=True))
    consumer = Consumer(url, queue, lambda delivery: delivery.body)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    consumer.ready.wait(10)
    times = []
    for number in range(calls + 20):
        started = time.perf_counter()
        publisher.call("", queue, b"ping", uuid.uuid4().hex, timeout=5)
        if number >= 20:
            times.append(time.perf_counter() - started)
    consumer.stop()
    thread.join(5)
    publisher.delete_queue(queue)
    publisher.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    service = support.Service()
    vhost = support.create_vhost()
    try:
        service.start()
        token = service.token("bench")
        body = {
            "instance": {
                "name": "bench",
                "flavorRef": "1",
                "volume": {"size": 1},
                "datastore": {"type": "postgresql"},
                "databases": [{"name": "app"}],
            }
        }
        answer = service.request("POST", "/v1.0/bench/instances", token, body)
        assert answer.status == 200, answer.body
        instance_id = answer.body["instance"]["id"]
        service.wait_for(token, "bench", instance_id, support.active_and_healthy)
        base = f"/v1.0/bench/instances/{instance_id}"
        api = api_calls(service, token, f"{base}/databases", args.calls)
        show = api_calls(service, token, base, args.calls)
        bare = bare_calls(f"amqp://guest:guest@127.0.0.1:5672/{vhost}", args.calls)
    finally:
        service.cleanup()
        support.delete_vhost(vhost)
    (api_p50, api_p95), (bare_p50, bare_p95) = percentiles(api), percentiles(bare)
    show_p50, show_p95 = percentiles(show)
    print(f"{args.calls} calls each")
    for name, p50, p95 in (
        ("GET /instances/{id}/databases", api_p50, api_p95),
        ("bare request-reply", bare_p50, bare_p95),
        ("GET /instances/{id} (no guest)", show_p50, show_p95),
    ):
        print(f"  {name:30s} : p50 {p50 * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms")
    print(
        f"  p50 difference                 : {(api_p50 - bare_p50) * 1000:6.2f} ms (aim: at most 5)"
    )


if __name__ == "__main__":
    main()
