"""Create-to-HEALTHY time of an instance against the datastore's own bare start.

Runs a private trove-svc (own state dir, port and RabbitMQ vhost), creates N instances of
each datastore one after another, and times POST to ACTIVE + HEALTHY. In the same run it
times the physical floor: the datastore's own init + start + first query by hand, with
nothing around it. Prints both medians and their ratio; then for the create, a restart of
the instance (to HEALTHY again) and its delete (to gone): the seconds and CPU seconds each
took, and the time of every Ansible step, in the order the playbook ran them.

CPU per action: user + system time, from the request to its end, of the bench's own
trove-svc (its API, task manager and conductor, and every process they waited for:
ansible-playbook, its forks and mitogen contexts, the commands they ran) and of the
processes the instance runs (its guest agent and server, found by the service's state
directory in their command line). Read from /proc before the request and at its end; it
includes the API's answers to the bench's own polling, and leaves out what a stopped
server spent after the first reading.

The warm create: a trove-svc of its own keeps a warm pool of one instance per datastore
(`TROVE_SVC_WARM_POOL`, flavor 1); each run waits until the pool's instance is built, then
times POST to ACTIVE + HEALTHY of a create that claims it (the pool's refill, which starts
right after the claim, runs beside it, as it would in service), then deletes it. Its
median, spread (fastest to slowest) and ratio to the bare start are printed beside the
cold create's, with its Ansible steps.

With `--provider ssh`, the same creates run on an SSH host pool as well (two hosts, each an
sshd of its own on a loopback address, tests/ssh_pool.py), beside the local provider, in
one run: the difference is what reaching a host over SSH costs. The first create on each
pool host also installs the guest agent's environment there; its time is shown apart.

With `--no-fork-server`, every Ansible run is a new ansible-playbook, as before the task
manager's fork server (taskmanager/playbook_server.py): the difference is what loading
Ansible in each run costs.

    .venv/bin/python bench/create_instance.py [--runs 5] [--datastore postgresql ...]
        [--provider ssh] [--no-fork-server]
"""

from __future__ import annotations

import argparse
import datetime
import functools
import glob
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
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


Snapshot = dict[tuple[int, int], tuple[int, bool]]


def cpu_snapshot(root: int, marker: str) -> Snapshot:
    """CPU ticks so far of a process tree, per process ((pid, start time): (ticks, whether it
    descends from `root`)): the root and its descendants, and the processes whose command
    line names `marker` (detached: a guest agent, a server) with theirs. A process's ticks
    are its own and those of the children it reaped."""
    pids = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()]
    stats = {int(pid): stat for pid in pids if (stat := _proc_stat(pid)) is not None}
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _, _) in stats.items():
        children[parent].append(pid)
    detached = [
        pid
        for pid, (parent, _, _) in stats.items()
        if parent == 1 and _cmdline_has(pid, marker.encode())
    ]
    found: Snapshot = {}
    for top, own in [(root, True)] + [(pid, False) for pid in detached]:
        wanted = [top]
        while wanted:
            pid = wanted.pop()
            if pid in stats and (pid, stats[pid][2]) not in found:
                found[(pid, stats[pid][2])] = (stats[pid][1], own)
                wanted.extend(children[pid])
    return found


def cpu_seconds(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds spent between two snapshots. A process of the root's tree that ended was
    reaped by one that lives on, whose ticks now hold its own: what it had before is taken
    off. A detached one that ended (a server stopped) counts for nothing more."""
    ticks = sum(t - before.get(key, (0, False))[0] for key, (t, _) in after.items())
    ticks -= sum(t for key, (t, own) in before.items() if own and key not in after)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Action:
    """The seconds, CPU seconds and Ansible steps of one action, run after run."""

    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    steps: dict[str, list[float]] = field(default_factory=dict)


ACTIONS = ("create", "restart", "delete")


PATH = "/v1.0/bench/instances"


def _timed(service: support.Service, action: Action, run: Callable[[], str]) -> str:
    """Run one action (`run` asks for it and waits until it is done); record it."""
    root = service.process.pid if service.process is not None else os.getpid()
    before = cpu_snapshot(root, str(service.state_dir))
    started = time.monotonic()
    instance_id = run()
    action.seconds.append(time.monotonic() - started)
    action.cpu.append(cpu_seconds(before, cpu_snapshot(root, str(service.state_dir))))
    return instance_id


def _create(service: support.Service, token: str, datastore: str) -> str:
    body = {
        "instance": {
            "name": "bench",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": datastore},
            **BODIES[datastore],
        }
    }
    resp = service.request("POST", PATH, token, body)
    assert resp.status == 200, resp.body
    instance_id = str(resp.body["instance"]["id"])
    service.wait_for(token, "bench", instance_id, support.active_and_healthy, timeout=300)
    return instance_id


def _restart(service: support.Service, token: str, instance_id: str) -> str:
    resp = service.request("POST", f"{PATH}/{instance_id}/action", token, {"restart": {}})
    assert resp.status == 202, resp.body
    service.wait_for(token, "bench", instance_id, support.active_and_healthy, timeout=300)
    return instance_id


def _delete(service: support.Service, token: str, instance_id: str) -> str:
    service.request("DELETE", f"{PATH}/{instance_id}", token)
    service.wait_gone(token, "bench", instance_id, timeout=120)
    return instance_id


def _actions(service: support.Service, token: str, datastore: str, runs: int) -> dict[str, Action]:
    """Create (to ACTIVE + HEALTHY), restart (to HEALTHY again) and delete (to gone)."""
    found = {name: Action() for name in ACTIONS}
    for _ in range(runs):
        instance_id = _timed(
            service, found["create"], functools.partial(_create, service, token, datastore)
        )
        _timed(service, found["restart"], functools.partial(_restart, service, token, instance_id))
        # The tasks' rows may go with their instance: their ids are read before.
        task_ids = {name: _task_id(service, instance_id, name) for name in ACTIONS}
        _timed(service, found["delete"], functools.partial(_delete, service, token, instance_id))
        for name in ACTIONS:
            found[name].task_ids.append(task_ids[name] or _task_id(service, instance_id, name))
    for action in found.values():
        action.steps = step_times(service.state_dir, [t for t in action.task_ids if t])
    return found


def _warm_pool_setting(datastores: list[str]) -> str:
    """A pool of one warm instance of flavor 1 per datastore, at the version this host has."""
    versions = {found.name: found.version for found in catalog.host_datastores()}
    return ",".join(f"{datastore}:{versions[datastore]}:1=1" for datastore in datastores)


def _ready_warm(service: support.Service, admin: str, datastore: str) -> set[str]:
    """Wait until the pool holds a built warm instance of `datastore`: their ids."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        listed = service.request("GET", "/v1.0/bench/mgmt/instances?limit=1000", admin)
        ready = {
            i["id"]
            for i in listed.body["instances"]
            if "warm_pool" in i and i["status"] == "WARM" and i["datastore"]["type"] == datastore
        }
        if ready:
            return ready
        time.sleep(0.2)
    raise AssertionError(f"no warm {datastore} instance:\n" + service.log_path.read_text()[-4000:])


def _run_warm(datastores: list[str], runs: int, service_env: dict[str, str]) -> dict[str, Action]:
    """Create-to-HEALTHY times of creates that claim a warm instance, per datastore."""
    service = support.Service(
        extra_env={**service_env, "TROVE_SVC_WARM_POOL": _warm_pool_setting(datastores)}
    )
    found = {}
    try:
        service.start()
        token, admin = service.token("bench"), service.token("bench-ops", admin=True)
        for datastore in datastores:
            action = found[datastore] = Action()
            for _ in range(runs):
                warm = _ready_warm(service, admin, datastore)
                create = functools.partial(_create, service, token, datastore)
                instance_id = _timed(service, action, create)
                assert instance_id in warm, f"a {datastore} create found no warm instance"
                action.task_ids.append(_task_id(service, instance_id, "create"))
                _delete(service, token, instance_id)
            action.steps = step_times(service.state_dir, action.task_ids)
    finally:
        service.cleanup()
    return found


def _run_provider(
    provider: str, datastores: list[str], runs: int, service_env: dict[str, str]
) -> dict[str, dict[str, Action]]:
    """Create-to-HEALTHY times (and Ansible step times) per datastore on one provider."""
    pool = None
    extra_env = dict(service_env)
    if provider == "ssh":
        # A short directory: PostgreSQL's socket path below it stays under 108 bytes.
        pool = ssh_pool.two_hosts(support.shared_tmp_dir("tsb-"), first_port=24970)
        pool.start()
        extra_env.update(TROVE_SVC_COMPUTE_PROVIDER="ssh", TROVE_SVC_HOST_POOL=str(pool.inventory))
    service = support.Service(extra_env=extra_env)
    found = {}
    try:
        service.start()
        token = service.token("bench")
        for datastore in datastores:
            found[datastore] = _actions(service, token, datastore, runs)
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
    parser.add_argument(
        "--no-fork-server",
        action="store_true",
        help="each Ansible run a new ansible-playbook (TROVE_SVC_ANSIBLE_FORK_SERVER=false)",
    )
    args = parser.parse_args()
    service_env = {"TROVE_SVC_ANSIBLE_FORK_SERVER": "false"} if args.no_fork_server else {}
    datastores = args.datastore or [d.name for d in catalog.host_datastores()]
    providers = ["local", *sorted(set(args.provider or []) - {"local"})]

    floors = {}
    for datastore in datastores:
        floor_name, floor = FLOORS[datastore]
        floors[datastore] = (floor_name, [floor() for _ in range(args.runs)])
    measured = {
        provider: _run_provider(provider, datastores, args.runs, service_env)
        for provider in providers
    }
    warm = _run_warm(datastores, args.runs, service_env)

    for datastore in datastores:
        floor_name, bare = floors[datastore]
        bare_median = statistics.median(bare)
        print(f"{datastore}, {args.runs} runs each")
        print(
            f"  bare {floor_name:34s}: median {bare_median:6.3f} s  "
            f"(runs: {', '.join(f'{b:.3f}' for b in bare)})"
        )
        _print_create("warm", warm[datastore].seconds, bare_median)
        for provider in providers:
            _print_create(
                f"{provider} cold", measured[provider][datastore]["create"].seconds, bare_median
            )
        _print_action("warm", "create", warm[datastore])
        for provider in providers:
            actions = measured[provider][datastore]
            for name in ACTIONS:
                _print_action(provider, name, actions[name])


def _print_create(kind: str, creates: list[float], bare_median: float) -> None:
    """A create's median, its spread (fastest to slowest) and its ratio to the bare start."""
    create_median = statistics.median(creates)
    print(
        f"  {kind:10s} create, POST -> ACTIVE+HEALTHY: median {create_median:6.2f} s  "
        f"spread {min(creates):.2f}-{max(creates):.2f}  "
        f"ratio {create_median / bare_median:5.1f}  "
        f"(runs: {', '.join(f'{c:.2f}' for c in creates)})"
    )


def _runs(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):6.2f}  (runs: {', '.join(f'{v:.2f}' for v in values)})"
    )


def _print_action(provider: str, name: str, action: Action) -> None:
    """An action's time and CPU, and every Ansible step of it, in the order they ran."""
    runs = len(action.seconds)
    steps = action.steps
    print(f"  {provider:5s} {name}: seconds {_runs(action.seconds)}")
    print(f"  {provider:5s} {name}: CPU seconds (trove-svc and the instance) {_runs(action.cpu)}")
    print(
        f"    every Ansible step of the {provider} {name}, in order (median s; "
        f"{sum(len(t) for t in steps.values()) / runs:.0f} steps, "
        f"{sum(sum(t) for t in steps.values()) / runs:.2f} s in all):"
    )
    for step, times in steps.items():
        shown = "" if len(times) == runs else f"  (in {len(times)} of {runs} runs)"
        print(f"      {statistics.median(times):5.2f}  {step}{shown}")


def _task_id(service: support.Service, instance_id: str, action: str) -> str:
    """The newest task of that action on the instance ('' once its row is gone)."""
    import sqlite3

    with sqlite3.connect(service.state_dir / "trove-svc.db") as db:
        row = db.execute(
            "SELECT id FROM task WHERE instance_id = ? AND action = ? ORDER BY rowid DESC",
            (instance_id, action),
        ).fetchone()
    return str(row[0]) if row else ""


if __name__ == "__main__":
    main()
