"""Automatic failover and rejoin: time from killing a source to the first write its replica
accepts, committed rows lost, and time from the old source coming back to it being a
HEALTHY replica of the new one, for PostgreSQL and MariaDB, with asynchronous and
synchronous replication.

Runs a private trove-svc on its default failover settings (a source not healthy for
10 s is failed over; guests report every 3 s). Each run makes a source (a user and a
table) and a replica, starts a writer that inserts numbered rows into the source one
commit at a time and remembers each acknowledged commit, then SIGKILLs the source's
datastore and guest agent together. It then tries to write to the replica until one
write is accepted, and counts the acknowledged rows the new source does not have.

Synchronous: PostgreSQL with `synchronous_standby_names = '*'` on the source;
MariaDB with semi-synchronous replication (AFTER_SYNC) between source and replica.
Both through configuration groups, as a user would set them.

The time splits into detection (kill to the failover task's start: the failover limit,
less the age of the last healthy report, plus up to a second of polling) and promotion
(the task's start to the first accepted write): the floor is the limit itself.

Then the old source comes back as a machine would: its server started alone, as it was
(it takes a stray write, a split brain), then its guest. Rejoin time is from the guest's
start to the old source being ACTIVE and HEALTHY as a replica of the new source with every
row the new source has and without the stray one; a rejoin that fails counts as such.
Each figure is printed as its median (p50) and its spread (min to max) over the runs.

    .venv/bin/python bench/failover.py [--runs 5] [--datastores postgresql,mariadb]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
import pymysql

from bench.client import ApiClient
from tests import processes, support

PROJECT = "bench"
USER = {"name": "app", "password": "bench-pw-1-long"}
DATABASE = "app"
# An old source not a HEALTHY replica this long after its guest is back never rejoined.
REJOIN_LIMIT = 180.0

SYNC_GROUPS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # (the source's group values, the replica's)
    "postgresql": ({"synchronous_standby_names": "*"}, {}),
    "mariadb": (
        {
            "rpl_semi_sync_master_enabled": True,
            "rpl_semi_sync_master_wait_point": "AFTER_SYNC",
            "rpl_semi_sync_master_timeout": 60000,
        },
        {"rpl_semi_sync_slave_enabled": True},
    ),
}


class Writer(threading.Thread):
    """Inserts 1, 2, 3, ... into `items`, one commit each, until a commit fails."""

    def __init__(self, insert: Callable[[int], None]) -> None:
        super().__init__(daemon=True)
        self._insert = insert
        self.acknowledged: list[int] = []

    def run(self) -> None:
        n = 0
        while True:
            n += 1
            try:
                self._insert(n)
            except Exception:
                return
            self.acknowledged.append(n)


def pg_session(instance: dict[str, Any]) -> Any:
    """A session at the address and port the instance shows."""
    return psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        dbname=DATABASE,
        user=USER["name"],
        password=USER["password"],
        autocommit=True,
        connect_timeout=2,
    )


def maria_session(instance: dict[str, Any]) -> Any:
    return pymysql.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user=USER["name"],
        password=USER["password"],
        database=DATABASE,
        autocommit=True,
        connect_timeout=2,
        read_timeout=5,
        write_timeout=5,
    )


def execute(
    datastore: str, instance: dict[str, Any], sql: str, args: tuple[Any, ...] = ()
) -> list[Any]:
    if datastore == "postgresql":
        with pg_session(instance) as conn:
            cursor = conn.execute(sql.replace("?", "%s"), args)
            return list(cursor.fetchall()) if cursor.description else []
    conn = maria_session(instance)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), args)
            return list(cursor.fetchall())
    finally:
        conn.close()


def first_write(datastore: str, instance: dict[str, Any]) -> None:
    """Row -1 on the new source. A PostgreSQL replica took its source's group (and its
    `synchronous_standby_names`) when it was attached: with no standby of its own yet, the
    session does not wait for one."""
    if datastore == "postgresql":
        with pg_session(instance) as conn:
            conn.execute("SET synchronous_commit = local")
            conn.execute("INSERT INTO items VALUES (-1)")
        return
    execute(datastore, instance, "INSERT INTO items VALUES (-1)")


def stray_write(datastore: str, instance: dict[str, Any]) -> None:
    """Row -2, written on a server that runs alone. A PostgreSQL session does not wait for
    a synchronous standby that is not there; MariaDB's semi-synchronous wait cannot be
    turned off for one session, so there the write goes on in the background (it commits
    when the wait times out, or never: the rejoin discards it either way)."""
    if datastore == "postgresql":
        with pg_session(instance) as conn:
            conn.execute("SET synchronous_commit = local")
            conn.execute("INSERT INTO items VALUES (-2)")
        return
    maria_session(instance).close()  # it answers: the server runs

    def write() -> None:
        with contextlib.suppress(Exception):
            execute(datastore, instance, "INSERT INTO items VALUES (-2)")

    threading.Thread(target=write, daemon=True).start()


def kept_inserter(datastore: str, instance: dict[str, Any]) -> Callable[[int], None]:
    """An insert function over one connection (a writer's commits in a row)."""
    if datastore == "postgresql":
        conn = pg_session(instance)
        return lambda n: conn.execute("INSERT INTO items VALUES (%s)", (n,)) and None
    maria = maria_session(instance)

    def insert(n: int) -> None:
        with maria.cursor() as cursor:
            cursor.execute("INSERT INTO items VALUES (%s)", (n,))

    return insert


class Bench(ApiClient):
    def create_healthy(self, name: str, **spec: Any) -> dict[str, Any]:
        return self.wait_healthy(self.create(name, "1", 1, **spec)["id"], timeout=600)

    def group(self, datastore: str, values: dict[str, Any]) -> str | None:
        if not values:
            return None
        body = {
            "configuration": {
                "name": f"{datastore}-sync",
                "values": values,
                "datastore": {"type": datastore},
            }
        }
        return str(self.request("POST", "/configurations", body)["configuration"]["id"])

    def attach(self, instance_id: str, group_id: str) -> None:
        """Attach a configuration group and wait until its values are applied."""
        self.request("PUT", f"/instances/{instance_id}", {"instance": {"configuration": group_id}})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            tasks = self.request("GET", f"/instances/{instance_id}/tasks")["tasks"]
            done = [t for t in tasks if t["action"] == "configure" and t["finished"]]
            if done:
                assert done[0]["state"] == "SUCCEEDED", done
                return
            time.sleep(0.3)
        raise AssertionError("the configuration group was never applied")

    def eject_started(self, instance_id: str) -> float | None:
        """When the failover task started (the store's own time; the API shows seconds)."""
        from trove_svc.store.db import open_store
        from trove_svc.store.models import Task

        database = open_store(self.service.settings().effective_database_url)
        try:
            task = Task.get_or_none((Task.instance_id == instance_id) & (Task.action == "eject"))
            return float(task.started_at) if task and task.started_at else None
        finally:
            database.close()

    def one_run(self, datastore: str, groups: tuple[str | None, str | None]) -> dict[str, float]:
        source = self.create_healthy(
            f"{datastore}-src",
            datastore={"type": datastore},
            databases=[{"name": DATABASE}],
            users=[{**USER, "databases": [{"name": DATABASE}]}],
        )
        execute(datastore, source, "CREATE TABLE items (n INT PRIMARY KEY)")
        replica = self.create_healthy(
            f"{datastore}-rep",
            replica_of=source["id"],
            **({"configuration": groups[1]} if groups[1] else {}),
        )
        if groups[0]:
            # Synchronous from now on: with no replica yet, every commit would wait.
            self.attach(source["id"], groups[0])
        writer = Writer(kept_inserter(datastore, source))
        writer.start()
        time.sleep(3)
        instance_dir = self.service.state_dir / "instances" / source["id"]
        pid_file = (
            instance_dir / "postgresql" / "data" / "postmaster.pid"
            if datastore == "postgresql"
            else instance_dir / "mariadb" / "mariadbd.pid"
        )
        server = processes.command_of(pid_file)
        guest = processes.command_of(instance_dir / "guest.pid")
        killed_wall = time.time()
        killed = time.monotonic()
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        processes.kill_guest(instance_dir / "guest.pid")
        writer.join(timeout=30)
        while True:
            try:
                first_write(datastore, replica)
                break
            except Exception:
                if time.monotonic() - killed > 300:
                    raise
                time.sleep(0.05)
        to_write = time.monotonic() - killed
        rows = {row[0] for row in execute(datastore, replica, "SELECT n FROM items")}
        lost = len([n for n in writer.acknowledged if n not in rows])
        started = self.eject_started(source["id"])
        detection = (started - killed_wall) if started else float("nan")
        self.wait_ejected(source["id"])
        rejoin = self.rejoin_seconds(datastore, source, replica, server, guest)
        self.delete_instance(source["id"])
        self.delete_instance(replica["id"])
        return {
            "seconds": to_write,
            "detection": detection,
            "lost": float(lost),
            "committed": float(len(writer.acknowledged)),
            "rejoin": rejoin,
        }

    def wait_ejected(self, instance_id: str) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            tasks = self.request("GET", f"/instances/{instance_id}/tasks")["tasks"]
            if any(t["action"] == "eject" and t["finished"] for t in tasks):
                return
            time.sleep(0.3)
        raise AssertionError("the failover never ended")

    def rejoin_seconds(
        self,
        datastore: str,
        source: dict[str, Any],
        replica: dict[str, Any],
        server: tuple[list[str], int],
        guest: tuple[list[str], int],
    ) -> float:
        """Seconds from the old source's guest starting again to the old source being a
        HEALTHY replica of `replica` with exactly its rows; NaN if it never is."""
        processes.start_again(*server)
        stray_deadline = time.monotonic() + 60
        while True:  # a split brain: alone, it takes a write the new source never had
            try:
                stray_write(datastore, source)
                break
            except Exception:
                if time.monotonic() > stray_deadline:
                    raise
                time.sleep(0.1)
        processes.start_again(*guest)
        back = time.monotonic()
        wanted = {row[0] for row in execute(datastore, replica, "SELECT n FROM items")}
        while time.monotonic() - back < REJOIN_LIMIT:
            if self.rejoin_failed(source["id"]):
                return float("nan")
            if self.follows_with(datastore, source, replica["id"], wanted):
                return time.monotonic() - back
            time.sleep(0.3)
        return float("nan")

    def rejoin_failed(self, instance_id: str) -> bool:
        tasks = self.request("GET", f"/instances/{instance_id}/tasks")["tasks"]
        failed = [t for t in tasks if t["action"] == "rejoin" and t["state"] == "FAILED"]
        for task in failed:  # why, for whoever reads the figures
            print(f"  rejoin failed: {task.get('message') or task}", file=sys.stderr)
        return bool(failed)

    def follows_with(
        self, datastore: str, instance: dict[str, Any], source_id: str, wanted: set[Any]
    ) -> bool:
        """HEALTHY, following `source_id`, with the rows `wanted` and not the stray one."""
        shown = self.request("GET", f"/instances/{instance['id']}")["instance"]
        if not support.active_and_healthy(shown):
            return False
        if (shown.get("replica_of") or {}).get("id") != source_id:
            return False
        try:
            rows = {row[0] for row in execute(datastore, instance, "SELECT n FROM items")}
        except Exception:  # restarting in standby, say
            return False
        return rows >= wanted and -2 not in rows


def spread(values: list[float]) -> str:
    """p50 (min to max) of the values that are numbers, and how many are not."""
    found = sorted(v for v in values if v == v)
    if not found:
        return "none"
    missing = len(values) - len(found)
    text = f"p50 {statistics.median(found):.1f} s ({found[0]:.1f} to {found[-1]:.1f})"
    return text + (f", {missing} never" if missing else "")


def summary(runs: list[dict[str, float]]) -> str:
    return (
        f"failover {spread([r['seconds'] for r in runs])} "
        f"(detection {spread([r['detection'] for r in runs])}); "
        f"rejoin {spread([r['rejoin'] for r in runs])}; "
        f"rows lost {[int(r['lost']) for r in runs]} of "
        f"{[int(r['committed']) for r in runs]} committed"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--datastores", default="postgresql,mariadb")
    parser.add_argument("--modes", default="async,sync", help="replication: async, sync")
    args = parser.parse_args()

    # The service's own defaults for heartbeats and failover, not the tests' quicker ones.
    service = support.Service(
        extra_env={"TROVE_SVC_HEARTBEAT_INTERVAL": "3", "TROVE_SVC_HEARTBEAT_EXPIRY": "15"}
    )
    service.start()
    results: dict[str, list[dict[str, float]]] = {}
    try:
        bench = Bench(service, PROJECT)
        settings = service.settings()
        print(
            f"failover_after {settings.failover_after:g} s; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        for datastore in args.datastores.split(","):
            sync_groups = (
                bench.group(datastore, SYNC_GROUPS[datastore][0]),
                bench.group(datastore, SYNC_GROUPS[datastore][1]),
            )
            modes = {"async": (None, None), "sync": sync_groups}
            for mode in args.modes.split(","):
                groups = modes[mode]
                key = f"{datastore} {mode}"
                results[key] = []
                for number in range(args.runs):
                    outcome = bench.one_run(datastore, groups)
                    results[key].append(outcome)
                    print(
                        f"{key} run {number + 1}: {outcome['seconds']:.1f} s to write "
                        f"(detection {outcome['detection']:.1f} s), lost "
                        f"{int(outcome['lost'])} of {int(outcome['committed'])}; rejoined in "
                        f"{outcome['rejoin']:.1f} s; load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
        print()
        for key, runs in results.items():
            print(f"{key}: {summary(runs)}")
    finally:
        service.cleanup()


if __name__ == "__main__":
    main()
