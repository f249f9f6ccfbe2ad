"""Datastores started by hand, with nothing of trove-svc around them: the floor a create
is measured against, and real servers for tests of the store."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import free_port, shared_tmp_dir


@dataclass
class BareCluster:
    """A PostgreSQL cluster made by hand with initdb and pg_ctl, for tests and the bench.

    As root it runs as a throwaway system account, since PostgreSQL refuses root.
    """

    bin_dir: str
    port: int = field(default_factory=free_port)
    base: Path = field(default_factory=lambda: shared_tmp_dir("bare-pg-"))
    account: str = "trove-svc-bare"

    @property
    def _run_as(self) -> list[str]:
        return ["runuser", "-u", self.account, "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        """initdb + start; returns once the server accepts connections."""
        if os.geteuid() == 0:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", self.account],
                capture_output=True,
                check=False,
            )
            shutil.chown(self.base, self.account)
        data = self.base / "data"
        subprocess.run(
            [
                *self._run_as,
                f"{self.bin_dir}/initdb",
                "-D",
                str(data),
                "-U",
                "admin",
                "--auth-local=trust",
                "--auth-host=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *self._run_as,
                f"{self.bin_dir}/pg_ctl",
                "start",
                "-w",
                "-D",
                str(data),
                "-l",
                str(self.base / "log"),
                "-o",
                f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        subprocess.run(
            [
                *self._run_as,
                f"{self.bin_dir}/pg_ctl",
                "stop",
                "-m",
                "immediate",
                "-D",
                str(self.base / "data"),
            ],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def _bare_dir(account: str) -> Path:
    base = shared_tmp_dir("bare-")
    if os.geteuid() == 0:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", account], capture_output=True, check=False
        )
        shutil.chown(base, account)
    return base


def bare_mariadb(
    port: int, account: str = "trove-svc-bare", init_sql: str = ""
) -> Callable[[], None]:
    """mariadb-install-db + mariadbd, by hand; returns once it answers. Returns a stopper.
    `init_sql`: statements the server runs as it starts (its --init-file)."""
    import pymysql

    base = _bare_dir(account)
    init_file = []
    if init_sql:
        (base / "init.sql").write_text(init_sql)
        init_file = [f"--init-file={base}/init.sql"]
    run_as = ["runuser", "-u", account, "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [
            *run_as,
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={base}/data",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            f"--user={account}",
        ],
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [
            *run_as,
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={base}/data",
            f"--socket={base}/sock",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={base}/pid",
            *init_file,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            pymysql.connect(unix_socket=f"{base}/sock", user="root").close()
            break
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)

    def stop() -> None:
        server.terminate()
        server.wait(30)
        shutil.rmtree(base, ignore_errors=True)

    return stop


def bare_redis(port: int) -> Callable[[], None]:
    """redis-server, by hand; returns once it answers PING. Returns a stopper."""
    import redis

    base = shared_tmp_dir("bare-redis-")
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(base),
            "--save",
            "",
            "--appendonly",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)

    def stop() -> None:
        server.terminate()
        server.wait(30)
        shutil.rmtree(base, ignore_errors=True)

    return stop


MARIADB_STORE = """CREATE DATABASE trove;
CREATE USER 'trove'@'localhost' IDENTIFIED BY 'Store-pw-1-long';
GRANT ALL ON trove.* TO 'trove'@'localhost';
"""


@contextmanager
def store_server(engine: str) -> Iterator[str]:
    """A private server to keep trove-svc's store on (`postgresql` or `mariadb`): its URL."""
    if engine == "postgresql":
        from trove_datastores.postgresql import spec as postgresql

        found = postgresql.discover()
        assert found is not None, "no PostgreSQL binaries on this host"
        cluster = BareCluster(found.bin_dir)
        cluster.start()
        try:
            yield f"postgresql://admin@127.0.0.1:{cluster.port}/postgres"
        finally:
            cluster.stop()
        return
    port = free_port()
    stop = bare_mariadb(port, init_sql=MARIADB_STORE)
    try:
        yield f"mysql://trove:Store-pw-1-long@127.0.0.1:{port}/trove"
    finally:
        stop()
