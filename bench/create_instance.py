"""Create-to-HEALTHY time of an instance against the datastore's own bare start.

Runs a private trove-svc (own state dir, port and RabbitMQ vhost), creates N instances of
each datastore one after another, and times POST to ACTIVE + HEALTHY. In the same run it
times the physical floor: the datastore's own init + start + first query by hand, with
nothing around it. Prints both medians, their ratio, the CPU seconds each create cost, and
the time of every Ansible step of the create, in the order the playbook ran them.

CPU per create: user + system time, from POST to ACTIVE + HEALTHY, of the bench's own
trove-svc (its API, task manager and conductor, and every process they waited for:
ansible-playbook, its forks and mitogen contexts, the commands they ran) and of the
processes the create left running (the instance's guest agent and server, found by the
service's state directory in their command line). Read from /proc before the POST and at
HEALTHY; it includes the API's answers to the bench's own polling.

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
import os
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
    """Seconds each Ansible step took, from the runs' job events, in the order they ran. A
    name met again in the same create (another file's step of that name) is counted apart."""
    steps: dict[str, list[float]] = defaultdict(list)
    for task_id in task_ids:
        seen: dict[str, int] = defaultdict(int)
        artifacts = sorted(
            glob.glob(str(state_dir / "runs" / task_id / "artifacts" / "*")),
            key=lambda d: Path(d).stat().st_mtime,
        )
        for artifact in artifacts:
            events = [json.loads(f.read_text()) for f in Path(artifact).glob("job_events/*.json")]
            if not events:
                continue
            events.sort(key=lambda e: e["counter"])
            first = datetime.datetime.fromisoformat(events[0]["created"]).timestamp()
            starts = [
                (
                    datetime.datetime.fromisoformat(e["created"]).timestamp(),
                    f"{e['event_data'].get('role', '') or '-'}: {e['event_data'].get('task', '')}",
                )
                for e in events
                if e["event"] in ("playbook_on_task_start", "playbook_on_stats")
            ]
            steps["(ansible-playbook start-up)"].append(starts[0][0] - first if starts else 0)
            for (t, name), (t_next, _) in itertools.pairwise(starts):
                seen[name] += 1
                steps[name if seen[name] == 1 else f"{name} (#{seen[name]})"].append(t_next - t)
    return steps


def _proc_stat(pid: str) -> tuple[int, int, int] | None:
    """(parent, CPU ticks of the process and its reaped children, start time) of a process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command: state, ppid, ..., utime (14th field), stime, cutime, cstime, ...,
    # starttime (22nd); fields[0] is the 3rd.
    return int(fields[1]), sum(int(f) for f in fields[11:15]), int(fields[19])


def _cmdline_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def cpu_seconds(root: int, marker: str) -> float:
    """CPU seconds so far of a process tree: the root's, and those of the processes whose
    command line names `marker` (detached: a guest agent, a server), with their descendants.
    A process's own time plus that of the children it reaped: each tick is counted once."""
    pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]
    stats = {int(pid): stat for pid in pids if (stat := _proc_stat(pid)) is not None}
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _, _) in stats.items():
        children[parent].append(pid)
    wanted = [root] + [
        pid
        for pid, (parent, _, _) in stats.items()
        if parent == 1 and _cmdline_has(pid, marker.encode())
    ]
    seen: set[int] = set()
    while wanted:
        pid = wanted.pop()
        if pid not in seen and pid in stats:
            seen.add(pid)
            wanted.extend(children[pid])
    return sum(stats[pid][1] for pid in seen) / os.sysconf("SC_CLK_TCK")


def _creates(
    service: support.Service, token: str, datastore: str, runs: int
) -> tuple[list[float], list[float], list[str]]:
    creates, cpus, task_ids = [], [], []
    assert service.process is not None, "the bench runs `trove-svc up`"
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
        cpu_before = cpu_seconds(service.process.pid, str(service.state_dir))
        started = time.monotonic()
        resp = service.request("POST", "/v1.0/bench/instances", token, body)
        assert resp.status == 200, resp.body
        instance_id = resp.body["instance"]["id"]
        service.wait_for(token, "bench", instance_id, support.active_and_healthy, timeout=300)
        creates.append(time.monotonic() - started)
        cpus.append(cpu_seconds(service.process.pid, str(service.state_dir)) - cpu_before)
        task_ids.append(_create_task_id(service, instance_id))
        service.request("DELETE", f"/v1.0/bench/instances/{instance_id}", token)
        service.wait_gone(token, "bench", instance_id, timeout=120)
    return creates, cpus, task_ids


Measured = tuple[list[float], list[float], dict[str, list[float]]]


def _run_provider(provider: str, datastores: list[str], runs: int) -> dict[str, Measured]:
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
            creates, cpus, task_ids = _creates(service, token, datastore, runs)
            found[datastore] = (creates, cpus, step_times(service.state_dir, task_ids))
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
            creates, cpus, steps = measured[provider][datastore]
            create_median = statistics.median(creates)
            print(
                f"  {provider:5s} create, POST -> ACTIVE+HEALTHY: median {create_median:6.2f} s  "
                f"ratio {create_median / bare_median:5.1f}  "
                f"(runs: {', '.join(f'{c:.2f}' for c in creates)})"
            )
            print(
                f"  {provider:5s} create, CPU seconds (trove-svc and the instance): "
                f"median {statistics.median(cpus):6.2f}  "
                f"(runs: {', '.join(f'{c:.2f}' for c in cpus)})"
            )
            _print_steps(provider, steps, len(creates))


def _print_steps(provider: str, steps: dict[str, list[float]], runs: int) -> None:
    """Every Ansible step of the create, in the order they ran (median seconds)."""
    print(
        f"    every Ansible step of the {provider} create, in order (median s; "
        f"{sum(len(t) for t in steps.values()) / runs:.0f} steps a create, "
        f"{sum(sum(t) for t in steps.values()) / runs:.2f} s in all):"
    )
    for name, times in steps.items():
        shown = "" if len(times) == runs else f"  (in {len(times)} of {runs} runs)"
        print(f"      {statistics.median(times):5.2f}  {name}{shown}")


def _create_task_id(service: support.Service, instance_id: str) -> str:
    import sqlite3

    with sqlite3.connect(service.state_dir / "trove-svc.db") as db:
        row = db.execute(
            "SELECT id FROM task WHERE instance_id = ? AND action = 'create'", (instance_id,)
        ).fetchone()
    return str(row[0])


if __name__ == "__main__":
    main()
