"""Create-to-HEALTHY time of an instance against the datastore's own bare start.

Runs a private trove-svc (own state dir, port and RabbitMQ vhost), creates N instances of
each datastore one after another, and times POST to ACTIVE + HEALTHY. In the same run it
times the physical floor: the datastore's own init + start + first query by hand, with
nothing around it. Prints both medians, their ratio, and where the create's time went.

    .venv/bin/python bench/create_instance.py [--runs 5] [--datastore postgresql ...]
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

import psycopg

from tests import bare, support
from trove_svc import catalog
from trove_wire.datastores import postgresql

USER = {"name": "app", "password": "bench-pw-1-long"}
BODIES = {
    "postgresql": {
        "databases": [{"name": "app"}],
        "users": [{**USER, "databases": [{"name": "app"}]}],
    },
    "mariadb": {
        "databases": [{"name": "app"}],
        "users": [{**USER, "databases": [{"name": "app"}]}],
    },
    "redis": {"users": [USER]},
}


def bare_postgresql() -> float:
    """Seconds for initdb + pg_ctl start + a first query, with nothing around them."""
    found = postgresql.discover()
    assert found is not None, "no PostgreSQL binaries on this host"
    cluster = bare.BareCluster(found.bin_dir)
    started = time.monotonic()
    cluster.start()
    with psycopg.connect(
        host=str(cluster.base), port=cluster.port, user="admin", dbname="postgres"
    ) as conn:
        conn.execute("SELECT 1").fetchone()
    elapsed = time.monotonic() - started
    cluster.stop()
    return elapsed


def bare_timed(start: Callable[[int], Callable[[], None]]) -> float:
    started = time.monotonic()
    stop = start(support.free_port())
    elapsed = time.monotonic() - started
    stop()
    return elapsed


FLOORS: dict[str, tuple[str, Callable[[], float]]] = {
    "postgresql": ("initdb + pg_ctl start + SELECT 1", bare_postgresql),
    "mariadb": ("install-db + mariadbd + SELECT 1", lambda: bare_timed(bare.bare_mariadb)),
    "redis": ("redis-server + PING", lambda: bare_timed(bare.bare_redis)),
}


def step_times(state_dir: Path, task_ids: list[str]) -> dict[str, list[float]]:
    """Seconds each Ansible step took, from the runs' job events."""
    steps: dict[str, list[float]] = defaultdict(list)
    for task_id in task_ids:
        events = [
            json.loads(Path(f).read_text())
            for f in glob.glob(
                str(state_dir / "runs" / task_id / "artifacts" / "*" / "job_events" / "*.json")
            )
        ]
        events.sort(key=lambda e: e["counter"])
        starts = [
            (
                datetime.datetime.fromisoformat(e["created"]).timestamp(),
                f"{e['event_data'].get('role', '') or '-'}: {e['event_data'].get('task', '')}",
            )
            for e in events
            if e["event"] in ("playbook_on_task_start", "playbook_on_stats")
        ]
        first = datetime.datetime.fromisoformat(events[0]["created"]).timestamp()
        steps["(ansible-playbook start-up)"].append(starts[0][0] - first if starts else 0)
        for (t, name), (t_next, _) in itertools.pairwise(starts):
            steps[name].append(t_next - t)
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--datastore", action="append", choices=sorted(FLOORS))
    args = parser.parse_args()
    datastores = args.datastore or [d.name for d in catalog.host_datastores()]

    service = support.Service()
    results = {}
    try:
        service.start()
        token = service.token("bench")
        for datastore in datastores:
            floor_name, floor = FLOORS[datastore]
            bare = [floor() for _ in range(args.runs)]
            creates, task_ids = [], []
            for _ in range(args.runs):
                body = {
                    "instance": {
                        "name": "bench",
                        "flavorRef": "1",
                        "volume": {"size": 1},
                        "datastore": {"type": datastore},
                        **BODIES[datastore],
                    }
                }
                started = time.monotonic()
                resp = service.request("POST", "/v1.0/bench/instances", token, body)
                assert resp.status == 200, resp.body
                instance_id = resp.body["instance"]["id"]
                service.wait_for(token, "bench", instance_id, support.active_and_healthy)
                creates.append(time.monotonic() - started)
                task_ids.append(_create_task_id(service, instance_id))
                service.request("DELETE", f"/v1.0/bench/instances/{instance_id}", token)
                service.wait_gone(token, "bench", instance_id)
            results[datastore] = (
                floor_name,
                bare,
                creates,
                step_times(service.state_dir, task_ids),
            )
    finally:
        service.cleanup()

    for datastore, (floor_name, bare, creates, steps) in results.items():
        create_median, bare_median = statistics.median(creates), statistics.median(bare)
        print(f"{datastore}, {args.runs} runs each")
        print(
            f"  create, POST -> ACTIVE+HEALTHY : median {create_median:6.2f} s  "
            f"(runs: {', '.join(f'{c:.2f}' for c in creates)})"
        )
        print(
            f"  bare {floor_name:26s}: median {bare_median:6.3f} s  "
            f"(runs: {', '.join(f'{b:.3f}' for b in bare)})"
        )
        print(f"  ratio                          : {create_median / bare_median:6.1f}")
        print("  where the create's time goes (median seconds per Ansible step):")
        ranked = sorted(steps.items(), key=lambda kv: statistics.median(kv[1]), reverse=True)
        for name, times in ranked[:8]:
            print(f"    {statistics.median(times):5.2f}  {name}")


def _create_task_id(service: support.Service, instance_id: str) -> str:
    import sqlite3

    with sqlite3.connect(service.state_dir / "trove-svc.db") as db:
        row = db.execute(
            "SELECT id FROM task WHERE instance_id = ? AND action = 'create'", (instance_id,)
        ).fetchone()
    return str(row[0])


if __name__ == "__main__":
    main()
