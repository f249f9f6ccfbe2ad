"""Create-to-HEALTHY time of an instance against the datastore's own bare start.

Runs a private trove-svc (own state dir, port and RabbitMQ vhost), creates N instances of
each datastore one after another, and times POST to ACTIVE + HEALTHY. In the same run it
times the physical floor: the datastore's own init + start + first query by hand, with
nothing around it. Prints both medians, their ratio, and where the create's time went.

With `--provider ssh`, the same creates run on an SSH host pool as well (two hosts, each an
sshd of its own on a loopback address, tests/ssh_pool.py), beside the local provider, in
one run: the difference is what reaching a host over SSH costs. The first create on each
pool host also installs the guest agent's environment there; its time is shown apart.

    .venv/bin/python bench/create_instance.py [--runs 5] [--datastore postgresql ...]
        [--provider ssh]
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

from tests import bare, ssh_pool, support
from trove_datastores.postgresql import spec as postgresql
from trove_svc.domain import catalog

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


def _creates(
    service: support.Service, token: str, datastore: str, runs: int
) -> tuple[list[float], list[str]]:
    creates, task_ids = [], []
    for _ in range(runs):
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
        service.wait_for(token, "bench", instance_id, support.active_and_healthy, timeout=300)
        creates.append(time.monotonic() - started)
        task_ids.append(_create_task_id(service, instance_id))
        service.request("DELETE", f"/v1.0/bench/instances/{instance_id}", token)
        service.wait_gone(token, "bench", instance_id, timeout=120)
    return creates, task_ids


def _run_provider(
    provider: str, datastores: list[str], runs: int
) -> dict[str, tuple[list[float], dict[str, list[float]]]]:
    """Create-to-HEALTHY times (and Ansible step times) per datastore on one provider."""
    pool = None
    extra_env: dict[str, str] = {}
    if provider == "ssh":
        # A short directory: PostgreSQL's socket path below it stays under 108 bytes.
        pool = ssh_pool.two_hosts(support.shared_tmp_dir("tsb-"), first_port=24970)
        pool.start()
        extra_env = {
            "TROVE_SVC_COMPUTE_PROVIDER": "ssh",
            "TROVE_SVC_HOST_POOL": str(pool.inventory),
        }
    service = support.Service(extra_env=extra_env)
    found = {}
    try:
        service.start()
        token = service.token("bench")
        for datastore in datastores:
            creates, task_ids = _creates(service, token, datastore, runs)
            found[datastore] = (creates, step_times(service.state_dir, task_ids))
    finally:
        service.cleanup()
        if pool is not None:
            pool.cleanup()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--datastore", action="append", choices=sorted(FLOORS))
    parser.add_argument(
        "--provider",
        action="append",
        choices=["local", "ssh"],
        help="ssh: also on an SSH host pool, beside the local provider",
    )
    args = parser.parse_args()
    datastores = args.datastore or [d.name for d in catalog.host_datastores()]
    providers = ["local", *sorted(set(args.provider or []) - {"local"})]

    floors = {}
    for datastore in datastores:
        floor_name, floor = FLOORS[datastore]
        floors[datastore] = (floor_name, [floor() for _ in range(args.runs)])
    measured = {provider: _run_provider(provider, datastores, args.runs) for provider in providers}

    for datastore in datastores:
        floor_name, bare = floors[datastore]
        bare_median = statistics.median(bare)
        print(f"{datastore}, {args.runs} runs each")
        print(
            f"  bare {floor_name:34s}: median {bare_median:6.3f} s  "
            f"(runs: {', '.join(f'{b:.3f}' for b in bare)})"
        )
        for provider in providers:
            creates, steps = measured[provider][datastore]
            create_median = statistics.median(creates)
            print(
                f"  {provider:5s} create, POST -> ACTIVE+HEALTHY: median {create_median:6.2f} s  "
                f"ratio {create_median / bare_median:5.1f}  "
                f"(runs: {', '.join(f'{c:.2f}' for c in creates)})"
            )
            print(f"    where the {provider} create's time goes (median s per Ansible step):")
            ranked = sorted(steps.items(), key=lambda kv: statistics.median(kv[1]), reverse=True)
            for name, times in ranked[:6]:
                print(f"      {statistics.median(times):5.2f}  {name}")


def _create_task_id(service: support.Service, instance_id: str) -> str:
    import sqlite3

    with sqlite3.connect(service.state_dir / "trove-svc.db") as db:
        row = db.execute(
            "SELECT id FROM task WHERE instance_id = ? AND action = 'create'", (instance_id,)
        ).fetchone()
    return str(row[0])


if __name__ == "__main__":
    main()
