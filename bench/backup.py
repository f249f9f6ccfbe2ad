"""Backup and restore throughput of a PostgreSQL instance beside pgBackRest run by hand.

Runs a private trove-svc, makes a PostgreSQL instance and fills it with a generated data
set (default 1 GB of table data). Then, for each round, in the same run on the same data:

- backup: `POST /backups` to COMPLETED, against `pgbackrest backup --type=full` run by
  hand as the instance's account with the instance's own pgBackRest settings;
- restore: `POST /instances` with `restorePoint` to ACTIVE + HEALTHY, against the role's
  own `pgbackrest restore` run by hand into an empty directory, then `pg_ctl start` until
  it accepts connections (the physical floor of a restore: the tool, then the server).

Throughput is the cluster's data directory size over the time. Prints the medians, MB/s
and the ratio service/by hand (the aim: within 1.2x).

    .venv/bin/python bench/backup.py [--gb 1.0] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg

from bench.client import ApiClient
from tests import support
from trove_datastores.postgresql import spec as postgresql

PROJECT = "bench"
USER = {"name": "app", "password": "bench-pw-1-long"}
T = TypeVar("T")
ROW_BYTES = 140  # roughly, per generated row on disk


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def timed(action: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    outcome = action()
    return time.perf_counter() - started, outcome


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Bench(ApiClient):
    def create(self, name: str, **extra: Any) -> dict[str, Any]:  # type: ignore[override]
        return super().create(name, "2", 20, **extra)

    def backup(self, instance_id: str, name: str) -> dict[str, Any]:
        body = {"backup": {"name": name, "instance": instance_id}}
        made = self.request("POST", "/backups", body)["backup"]
        while True:
            shown = self.request("GET", f"/backups/{made['id']}")["backup"]
            if shown["status"] in ("COMPLETED", "FAILED"):
                assert shown["status"] == "COMPLETED", shown
                self.wait_healthy(instance_id)
                return dict(shown)
            time.sleep(0.2)

    def restore(self, backup_id: str, name: str) -> dict[str, Any]:
        created = self.create(name, restorePoint={"backupRef": backup_id})
        return self.wait_healthy(created["id"])


def fill(instance: dict[str, Any], gigabytes: float) -> None:
    rows = int(gigabytes * 1024**3 / ROW_BYTES)
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user=USER["name"],
        password=USER["password"],
        dbname="app",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TABLE filler (id bigint, a text, b text, c int)")
        step = 1_000_000
        for start in range(0, rows, step):
            conn.execute(
                "INSERT INTO filler SELECT g, md5(g::text), md5(random()::text)"
                " || md5(random()::text), (random() * 1e9)::int"
                " FROM generate_series(%s::bigint, %s::bigint) g",
                (start, min(rows, start + step) - 1),
            )


def as_account(owner: str, argv: list[str]) -> list[str]:
    return argv if owner == "root" else ["runuser", "-u", owner, "--", *argv]


def backup_by_hand(base: Path, owner: str) -> None:
    subprocess.run(
        as_account(
            owner,
            [
                "pgbackrest",
                f"--config={base / 'pgbackrest.conf'}",
                "--stanza=trove",
                "--type=full",
                "backup",
            ],
        ),
        check=True,
        capture_output=True,
    )


def newest_label(base: Path, owner: str) -> str:
    out = subprocess.run(
        as_account(
            owner,
            [
                "pgbackrest",
                f"--config={base / 'pgbackrest.conf'}",
                "--stanza=trove",
                "--output=json",
                "info",
            ],
        ),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return str(json.loads(out)[0]["backup"][-1]["label"])


def restore_by_hand(repository: Path, label: str, owner: str, vcpus: int) -> None:
    """The role's restore command into an empty directory, then the server started until
    it accepts connections, as the instance's account; then stopped and removed."""
    target = Path(tempfile.mkdtemp(prefix="bench-restore-", dir=repository.parent))
    data = target / "data"
    data.mkdir(mode=0o700)
    account = pwd.getpwnam(owner)
    os.chown(target, account.pw_uid, account.pw_gid)
    found = postgresql.discover()
    assert found is not None, "no PostgreSQL on this host"
    bin_dir = Path(found.bin_dir)
    try:
        subprocess.run(
            [
                "pgbackrest",
                "--config=/dev/null",
                "--stanza=trove",
                f"--repo1-path={repository}",
                f"--pg1-path={data}",
                f"--log-path={target}",
                f"--lock-path={target}",
                "--log-level-console=warn",
                "--log-level-file=off",
                f"--process-max={vcpus}",
                f"--set={label}",
                "--target-action=promote",
                "--type=immediate",
                "restore",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(["chown", "-R", f"{owner}:", str(target)], check=True)
        options = f"-p {free_port()} -k {target} -c archive_mode=off -c listen_addresses=''"
        start = [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-t",
            "3600",
            "-l",
            str(target / "log"),
            "start",
        ]
        subprocess.run(as_account(owner, start), check=True, capture_output=True)
        subprocess.run(
            as_account(
                owner, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
            ),
            check=True,
            capture_output=True,
        )
    finally:
        shutil.rmtree(target, ignore_errors=True)


def report(name: str, service_times: list[float], hand_times: list[float], size: int) -> None:
    ours, theirs = statistics.median(service_times), statistics.median(hand_times)
    megabytes = size / 1024**2
    print(
        f"{name:8} trove-svc {ours:7.1f} s {megabytes / ours:7.1f} MB/s | by hand "
        f"{theirs:7.1f} s {megabytes / theirs:7.1f} MB/s | ratio {ours / theirs:.2f}"
        f"   (runs: {', '.join(f'{t:.1f}' for t in service_times)} vs "
        f"{', '.join(f'{t:.1f}' for t in hand_times)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0, help="table data to generate")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    service = support.Service()
    service.start()
    try:
        bench = Bench(service, PROJECT)
        source = bench.create(
            "bench-src",
            datastore={"type": "postgresql"},
            databases=[{"name": "app"}],
            users=[{**USER, "databases": [{"name": "app"}]}],
        )
        source = bench.wait_healthy(source["id"])
        started = time.perf_counter()
        fill(source, args.gb)
        base = service.state_dir / "instances" / source["id"] / "postgresql"
        repository = service.state_dir / "backups" / source["id"]
        owner = pwd.getpwuid((base / "data").stat().st_uid).pw_name
        size = tree_bytes(base / "data")
        print(
            f"data set: {size / 1024**3:.2f} GB in the data directory, made in "
            f"{time.perf_counter() - started:.0f} s; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )

        backup_ours: list[float] = []
        backup_hand: list[float] = []
        made: dict[str, Any] = {}
        for number in range(args.rounds):
            backup_hand.append(timed(lambda: backup_by_hand(base, owner))[0])
            seconds, made = timed(partial(bench.backup, source["id"], f"round-{number}"))
            backup_ours.append(seconds)
            print(
                f"backup round {number + 1}: {seconds:.1f} s vs {backup_hand[-1]:.1f} s", flush=True
            )
        vcpus = 1  # flavor 2's
        label = newest_label(base, owner)  # the last round's backup: the service's
        restore_ours: list[float] = []
        restore_hand: list[float] = []
        for number in range(args.rounds):
            restore_hand.append(timed(lambda: restore_by_hand(repository, label, owner, vcpus))[0])
            seconds, copy = timed(partial(bench.restore, made["id"], f"restored-{number}"))
            restore_ours.append(seconds)
            print(
                f"restore round {number + 1}: {seconds:.1f} s vs {restore_hand[-1]:.1f} s",
                flush=True,
            )
            bench.delete_instance(copy["id"])

        print(
            f"\nPostgreSQL, {size / 1024**3:.2f} GB, {args.rounds} rounds, medians; "
            f"load now {os.getloadavg()[0]:.2f}"
        )
        report("backup", backup_ours, backup_hand, size)
        report("restore", restore_ours, restore_hand, size)
    finally:
        service.cleanup()


if __name__ == "__main__":
    main()
