"""A private, throwaway RabbitMQ node (or a cluster of them) for tests that must break the
broker.

    with BrokerNode() as node:                        # start() ... destroy()
        url = node.amqp_url()                         # administrator credentials
        node.api("PUT", "/api/vhosts/v1")             # management HTTP API
        node.stop(); node.start()                     # an outage: queues and messages kept
        node.block_publishes(); node.unblock_publishes()  # a memory alarm raised, lifted

    with BrokerCluster.of(3) as cluster:              # three nodes, one cluster
        url = cluster.amqp_url()                      # every node, comma-separated
        cluster.nodes[1].stop()                       # one node lost; quorum queues go on

Everything the node owns lives under ``base``: HOME (its own Erlang cookie), config,
enabled plugins (management), data, logs, pid file. It listens on loopback only, on ports
of its own, with an epmd of its own, so it never meets the system node. Its first boot makes
``admin_user`` an administrator instead of ``guest``, which never exists on it. Needs root
and Debian's RabbitMQ layout. Every process of the node carries
``TROVETEST_BROKER_NODE=<name>`` in its environment, so destroy() finds what a dead test
left behind.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
HOST = "127.0.0.1"
# Every process the node starts inherits this variable; its value is the node name.
MARKER = "TROVETEST_BROKER_NODE"


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports that are free on loopback right now (held open until all chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((HOST, port)) == 0


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by its parent) counts as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _kill(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


@dataclass
class BrokerNode:
    """One private RabbitMQ node; ports left at 0 are chosen free at construction."""

    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="trovetest-rmq-")))
    name: str = field(default_factory=lambda: f"trovetest-{secrets.token_hex(4)}@localhost")
    amqp_port: int = 0
    management_port: int = 0
    dist_port: int = 0
    epmd_port: int = 0
    admin_user: str = "trovetest-admin"
    # Hex only: the value goes unquoted into rabbitmq.conf and into URLs.
    admin_password: str = field(default_factory=lambda: secrets.token_hex(16))
    # Seconds the last start()/stop() took (from the call to ready / to the process gone).
    last_start_seconds: float = field(default=0.0, init=False)
    last_stop_seconds: float = field(default=0.0, init=False)
    # The Erlang cookie; empty: one the node makes itself. Nodes of a cluster share one.
    cookie: str = ""
    # False: another node of the cluster runs the epmd at `epmd_port` (nodes find each
    # other through one epmd).
    owns_epmd: bool = True
    _epmd: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        wanted = [self.amqp_port, self.management_port, self.dist_port, self.epmd_port]
        free = iter(_free_ports(wanted.count(0)))
        self.amqp_port, self.management_port, self.dist_port, self.epmd_port = (
            p or next(free) for p in wanted
        )

    # -- addresses ------------------------------------------------------------------------

    def amqp_url(
        self, user: str | None = None, password: str | None = None, vhost: str = "/"
    ) -> str:
        """amqp://user:password@127.0.0.1:port/vhost, quoted; the administrator by default."""
        user = self.admin_user if user is None else user
        password = self.admin_password if password is None else password
        q = urllib.parse.quote
        return f"amqp://{q(user, '')}:{q(password, '')}@{HOST}:{self.amqp_port}/{q(vhost, '')}"

    @property
    def management_url(self) -> str:
        return f"http://{HOST}:{self.management_port}"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> None:
        """Boot the node (fresh or from its kept data); return once AMQP and HTTP API answer.

        Takes about 4-5 s. Readiness is checked as `admin_user`: do not delete that user.
        """
        began = time.monotonic()
        if self._beam_pids():
            raise RuntimeError(f"{self.name} is already running (pids {self._beam_pids()})")
        for port in (self.amqp_port, self.management_port, self.dist_port):
            if _port_open(port):
                raise RuntimeError(f"port {port} for {self.name} is already taken")
        self._write_config()
        if self.owns_epmd:
            self._start_epmd()
        launch = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"],
            env=self._env(),
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=30,
        )
        if launch.returncode != 0:
            raise RuntimeError(
                f"rabbitmq-server -detached failed: {launch.stderr or launch.stdout}"
            )
        self.wait_ready(began + timeout - time.monotonic())
        self.last_start_seconds = time.monotonic() - began

    def wait_ready(self, timeout: float = 60) -> None:
        """Return once AMQP and the HTTP API answer; kill the node if they never do."""
        deadline = time.monotonic() + timeout
        seen_beam = False
        while time.monotonic() < deadline:
            beam = self._beam_pids()
            seen_beam = seen_beam or bool(beam)
            # The VM exiting before the listeners answer means the boot failed (bad config...).
            if seen_beam and not beam:
                raise RuntimeError(f"{self.name} died while booting:\n{self._log_tail()}")
            if self._amqp_ready() and self._management_ready():
                return
            time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"{self.name} not ready after {timeout:g}s:\n{self._log_tail()}")

    def stop(self, timeout: float = 60) -> None:
        """Shut the node down cleanly (SIGTERM, the same path as `rabbitmqctl shutdown`).

        Returns once the Erlang VM has exited, so the AMQP port is closed and the node can be
        start()ed again on the same data: durable queues and persistent messages survive.
        Falls back to SIGKILL after `timeout`. The AMQP listener closes within ~10 ms of the
        signal, but the call takes about 6 s: RabbitMQ 3.10 spends a fixed 5 s stopping the
        management plugin's statistics before the VM exits.
        """
        began = time.monotonic()
        beam = self._beam_pids()
        for pid in beam:
            _kill(pid, signal.SIGTERM)
        if not self._wait_gone(beam, timeout):
            self.kill()
        self._wait_gone(self.pids(except_epmd=True), 10)
        self.last_stop_seconds = time.monotonic() - began

    def kill(self) -> None:
        """Crash the node (SIGKILL), e.g. to test recovery; data is kept as a crash leaves it.

        Seen on 3.10.8: a quorum queue declared less than ~0.5 s before the SIGKILL can come
        back empty and leaderless for good (term 0; every operation on it times out).
        """
        pids = self.pids(except_epmd=True)
        for pid in pids:
            _kill(pid, signal.SIGKILL)
        self._wait_gone(pids, 10)

    def destroy(self) -> None:
        """Stop the node and its epmd and delete `base`; nothing of the node is left."""
        try:
            self.stop()
        finally:
            if self._epmd is not None:
                self._epmd.terminate()
                self._epmd.wait(10)
                self._epmd = None
            leftovers = self.pids()
            for pid in leftovers:
                _kill(pid, signal.SIGKILL)
            self._wait_gone(leftovers, 10)
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> BrokerNode:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()

    # -- control ------------------------------------------------------------------------

    def ctl(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """rabbitmqctl against this node (same HOME, so same cookie); raises on failure if check."""
        result = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr.strip() or result.stdout.strip()}"
            )
        return result

    def block_publishes(self) -> None:
        """Raise a memory alarm (a high watermark of 0): the node blocks every connection
        that publishes, consumers go on. Returns once the alarm is up."""
        self.ctl("set_vm_memory_high_watermark", "0")
        self._wait_for_memory_alarm(True)

    def unblock_publishes(self) -> None:
        """Lift the alarm block_publishes() raised (the stock watermark again)."""
        self.ctl("set_vm_memory_high_watermark", "0.4")
        self._wait_for_memory_alarm(False)

    def _wait_for_memory_alarm(self, up: bool, timeout: float = 30) -> None:
        # The management API's node stats lag by seconds; the alarm server answers now.
        deadline = time.monotonic() + timeout
        while (
            "resource_limit,memory" in self.ctl("eval", "rabbit_alarm:get_alarms().").stdout
        ) != up:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the memory alarm of {self.name} is not {'up' if up else 'down'}"
                )
            time.sleep(0.1)

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """One management HTTP API call (administrator by default): (status, decoded JSON).

        `path` is e.g. "/api/users/bob"; quote vhost names yourself ("/" is "%2F"). Error
        statuses are returned, not raised.
        """
        user = self.admin_user if user is None else user
        password = self.admin_password if password is None else password
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request = urllib.request.Request(
            self.management_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = int(response.status), response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        return status, json.loads(raw) if raw else None

    def pids(self, except_epmd: bool = False) -> list[int]:
        """Live processes carrying this node's marker (VM, its helpers, epmd)."""
        needle = f"{MARKER}={self.name}".encode()
        found: list[int] = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if needle not in (proc / "environ").read_bytes().split(b"\0"):
                    continue
                if except_epmd and (proc / "comm").read_text().strip() == "epmd":
                    continue
            except OSError:
                continue
            if _alive(int(proc.name)):
                found.append(int(proc.name))
        return found

    # -- internals ------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        """The environment for rabbitmq-server and rabbitmqctl: nothing from /etc/rabbitmq."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        etc = self.base / "etc"
        local = "-kernel inet_dist_use_interface {127,0,0,1}"
        env.update(
            {
                MARKER: self.name,
                "HOME": str(self.base / "home"),  # Erlang cookie: $HOME/.erlang.cookie
                "LC_ALL": env.get("LC_ALL", "C.UTF-8"),
                "RABBITMQ_NODENAME": self.name,
                # An env file of our own, so /etc/rabbitmq/rabbitmq-env.conf is not read.
                "RABBITMQ_CONF_ENV_FILE": str(etc / "rabbitmq-env.conf"),
                "RABBITMQ_CONFIG_FILE": str(etc / "rabbitmq.conf"),
                "RABBITMQ_CONFIG_FILES": str(etc / "conf.d"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(etc / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(etc / "enabled_plugins"),
                "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.base / "log"),
                "RABBITMQ_PID_FILE": str(self.base / "rabbitmq.pid"),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": local,
                "RABBITMQ_CTL_ERL_ARGS": local,
                "ERL_EPMD_PORT": str(self.epmd_port),
                "ERL_EPMD_ADDRESS": HOST,
                # Not erl_crash.dump in the caller's working directory.
                "ERL_CRASH_DUMP": str(self.base / "log" / "erl_crash.dump"),
            }
        )
        return env

    def _write_config(self) -> None:
        etc = self.base / "etc"
        for sub in (etc / "conf.d", self.base / "home", self.base / "mnesia", self.base / "log"):
            sub.mkdir(parents=True, exist_ok=True)
        (etc / "rabbitmq-env.conf").touch()
        cookie = self.base / "home" / ".erlang.cookie"
        if self.cookie and not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)
        (etc / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (etc / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = {HOST}:{self.amqp_port}\n"
            f"management.tcp.ip = {HOST}\n"
            f"management.tcp.port = {self.management_port}\n"
            # Replaces guest on first boot (empty database) only.
            f"default_user = {self.admin_user}\n"
            f"default_pass = {self.admin_password}\n"
            "default_user_tags.administrator = true\n"
            "log.console = false\n"
            "log.file.level = info\n"
        )

    def _start_epmd(self) -> None:
        """Our own epmd, started before the VM: no race with the VM auto-starting one, and as
        our child it is reaped (no zombie) when destroy() ends it."""
        if self._epmd is not None and self._epmd.poll() is None:
            return
        self._epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", HOST],
            env=self._env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C on the test run must not kill it under the node
        )
        deadline = time.monotonic() + 10
        while not _port_open(self.epmd_port):
            if self._epmd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"epmd on port {self.epmd_port} did not start")
            time.sleep(0.02)

    def _beam_pids(self) -> list[int]:
        """The Erlang VM itself (beam.smp), not its helpers (erl_child_setup, inet_gethost)."""
        found = []
        for pid in self.pids(except_epmd=True):
            try:
                if Path(f"/proc/{pid}/comm").read_text().startswith("beam"):
                    found.append(pid)
            except OSError:
                continue
        return found

    def _wait_gone(self, pids: list[int], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return not _port_open(self.amqp_port)

    def _amqp_ready(self) -> bool:
        """The listener answers an AMQP 0-9-1 header with a method frame (Connection.Start)."""
        try:
            with socket.create_connection((HOST, self.amqp_port), timeout=2) as s:
                s.sendall(b"AMQP\x00\x00\x09\x01")
                return s.recv(1) == b"\x01"
        except OSError:
            return False

    def _management_ready(self) -> bool:
        try:
            return self.api("GET", "/api/overview", timeout=2)[0] == 200
        except (OSError, ValueError):
            return False

    def _log_tail(self, lines: int = 30) -> str:
        """The end of the node's log, and why the VM died if it left a crash dump (a failure
        early in the boot, e.g. no epmd, happens before the log file exists)."""
        log = self.base / "log" / f"{self.name}.log"
        try:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            tail = f"(no log at {log})"
        dump = self.base / "log" / "erl_crash.dump"
        if dump.exists():
            with dump.open(errors="replace") as f:
                slogan = next((line for line in f if line.startswith("Slogan:")), "")
            tail += f"\n{dump}: {slogan.strip()}"
        return tail


@dataclass
class BrokerCluster:
    """Private nodes joined into one RabbitMQ cluster: one Erlang cookie, one epmd (the
    first node's), one administrator. Quorum queues declared once it is formed have a
    member on each node."""

    nodes: list[BrokerNode]

    @classmethod
    def of(cls, size: int) -> BrokerCluster:
        first = BrokerNode(cookie=secrets.token_hex(20))
        others = [
            BrokerNode(
                cookie=first.cookie,
                owns_epmd=False,
                epmd_port=first.epmd_port,
                admin_password=first.admin_password,
            )
            for _ in range(size - 1)
        ]
        return cls([first, *others])

    def start(self) -> None:
        """Boot the first node, then each other one and join it to the first (a node
        joins with its application stopped, and its own database is reset)."""
        first, *others = self.nodes
        first.start()
        # Booting is most of the time; the others boot side by side, then join in turn.
        with ThreadPoolExecutor(len(others) or 1) as pool:
            list(pool.map(BrokerNode.start, others))
        for node in others:
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.wait_ready()

    def running_nodes(self) -> int:
        """How many nodes the cluster counts as running, as the first live node sees it."""
        live = next(node for node in self.nodes if node.pids(except_epmd=True))
        status, overview = live.api("GET", "/api/nodes")
        assert status == 200, overview
        return sum(1 for node in overview if node.get("running"))

    def amqp_url(self, vhost: str = "/") -> str:
        """Every node's address in one URL, as a client of the cluster is given them."""
        first_url = self.nodes[0].amqp_url(vhost=vhost)
        hosts = ",".join(f"{HOST}:{node.amqp_port}" for node in self.nodes)
        return first_url.replace(f"{HOST}:{self.nodes[0].amqp_port}", hosts, 1)

    @property
    def management_url(self) -> str:
        return ",".join(node.management_url for node in self.nodes)

    def destroy(self) -> None:
        """Every node gone, the epmd's owner last. Killed first: a throwaway cluster need
        not spend RabbitMQ's 6 s clean stop on each node."""
        for node in self.nodes:
            node.kill()
        for node in reversed(self.nodes):
            node.destroy()

    def __enter__(self) -> BrokerCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.destroy()
