"""The broker-outage scenario, as an operator would live it, in figures.

Starts a private RabbitMQ node and a trove-svc on it, posts N creates, stops the broker
for about the given seconds while they build, starts it again, and prints: creates in
flight when the broker went, outage seconds, instances HEALTHY in the end, duplicate runs
(Ansible runs beyond one per create), failed creates, and seconds from the broker's return
until every instance was ACTIVE + HEALTHY.

    .venv/bin/python bench/faults.py [--creates 10] [--outage 15] [--rounds 1]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import support
from tests.broker_node import BrokerNode

PROJECT = "bench"


def _rows(service: support.Service, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(service.state_dir / "trove-svc.db", timeout=30) as db:
        return list(db.execute(sql, args).fetchall())


def _shown(service: support.Service, token: str, ids: list[str]) -> list[str]:
    found = []
    for instance_id in ids:
        body = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance_id}", token).body
        found.append(f"{body['instance']['status']}/{body['instance']['operating_status']}")
    return found


def one_round(
    node: BrokerNode, service: support.Service, token: str, creates: int, outage: float
) -> dict[str, float]:
    body = {
        "instance": {
            "name": "outage",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
        }
    }
    ids = []
    for _ in range(creates):
        answer = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
        assert answer.status == 200, answer.body
        ids.append(answer.body["instance"]["id"])
    while not any(
        _rows(service, "SELECT current_step FROM instance WHERE id = ?", i)[0][0] for i in ids
    ):
        time.sleep(0.1)
    in_flight = sum(s != "ACTIVE/HEALTHY" for s in _shown(service, token, ids))
    stopped_at = time.monotonic()
    node.stop()
    # The broker is gone from SIGTERM on; starting it again takes about 4.5 s.
    time.sleep(max(0.0, outage - (time.monotonic() - stopped_at) - 4.5))
    node.start()
    back_at = time.monotonic()
    deadline = back_at + 300
    while time.monotonic() < deadline:
        shown = _shown(service, token, ids)
        if all(s in ("ACTIVE/HEALTHY",) or s.startswith("ERROR") for s in shown):
            break
        time.sleep(0.25)
    recovered = time.monotonic() - back_at
    shown = _shown(service, token, ids)
    runs = [
        int(row[0])
        for i in ids
        for row in _rows(
            service, "SELECT runs FROM task WHERE instance_id = ? AND action = 'create'", i
        )
    ]
    result = {
        "creates in flight": float(in_flight),
        "outage seconds": back_at - stopped_at,
        "instances HEALTHY": float(sum(s == "ACTIVE/HEALTHY" for s in shown)),
        "duplicate runs": float(sum(max(0, r - 1) for r in runs)),
        "creates failed": float(sum(s.startswith("ERROR") for s in shown)),
        "seconds to recover": recovered,
    }
    for instance_id in ids:
        service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance_id}", token)
    for instance_id in ids:
        service.wait_gone(token, PROJECT, instance_id, timeout=120)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=10)
    parser.add_argument("--outage", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    node = BrokerNode()
    node.start()
    service = support.Service(
        transport_url=f"amqp://127.0.0.1:{node.amqp_port}/",
        management_url=node.management_url,
        admin_url=(
            f"http://{node.admin_user}:{node.admin_password}@127.0.0.1:{node.management_port}"
        ),
    )
    try:
        service.start()
        token = service.token(PROJECT)
        for number in range(1, args.rounds + 1):
            result = one_round(node, service, token, args.creates, args.outage)
            print(f"round {number} of {args.rounds} ({args.creates} PostgreSQL creates)")
            for name, value in result.items():
                print(
                    f"  {name:20s}: {value:g}"
                    if value.is_integer()
                    else f"  {name:20s}: {value:.1f}"
                )
    finally:
        service.cleanup()
        node.destroy()


if __name__ == "__main__":
    main()
