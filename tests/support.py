"""Helpers the tests share: a private RabbitMQ vhost and a running trove-svc."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.processes import pids_working_in, processes_mentioning, remove_leftovers

BROKER = ("127.0.0.1", 5672)
MANAGEMENT = "http://127.0.0.1:15672"
# The broker's stock administrator on loopback: tests use it to set deployments up (as
# `trove-svc setup` does by default) and to clean up after them, nothing else.
BROKER_ADMIN_URL = "http://guest:guest@127.0.0.1:15672"
VENV_BIN = Path(sys.executable).parent


def broker_reachable() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(BROKER) == 0


def create_vhost() -> str:
    """A vhost of our own, so tests never compete with a running service for messages."""
    name = f"trove-svc-test-{uuid.uuid4().hex[:8]}"
    quoted = urllib.parse.quote(name, safe="")
    management_request(MANAGEMENT, BROKER_ADMIN_URL, "PUT", f"/api/vhosts/{quoted}")
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    path = f"/api/permissions/{quoted}/guest"
    management_request(MANAGEMENT, BROKER_ADMIN_URL, "PUT", path, everything)
    return name


def delete_vhost(name: str) -> None:
    with contextlib.suppress(urllib.error.URLError):
        quoted = urllib.parse.quote(name, safe="")
        management_request(MANAGEMENT, BROKER_ADMIN_URL, "DELETE", f"/api/vhosts/{quoted}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shared_tmp_dir(prefix: str) -> Path:
    """A directory instance accounts can traverse (pytest's tmp_path is 0700 under root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def api_app(settings: Any, url: str) -> tuple[Any, Any]:
    """The API in-process with a throwaway service key: (app, bus)."""
    from trove_svc.api.app import create_app
    from trove_svc.bus.client import Bus
    from trove_svc.security.keys import KeyRing, ServiceKeys
    from trove_wire.seal import new_key

    keys = ServiceKeys(new_key())
    bus = Bus(url, KeyRing(keys))
    return create_app(settings, bus, keys), bus


def declare_control_plane(url: str) -> None:
    from trove_wire import topology
    from trove_wire.amqp import Publisher

    publisher = Publisher(url)
    try:
        publisher.declare(topology.declare_control_plane)
    finally:
        publisher.close()


@dataclass
class Response:
    status: int
    body: Any
    raw: bytes
    request_id: str = ""


def _instance_ports() -> tuple[int, int]:
    """TROVE_SVC_TEST_INSTANCE_PORTS, or under pytest-xdist this worker's share of it."""
    first, _, last = os.environ.get("TROVE_SVC_TEST_INSTANCE_PORTS", "24000-24999").partition("-")
    start, end = int(first), int(last)
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    if worker is None:
        return start, end
    share = (end - start + 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    start += int(worker.removeprefix("gw")) * share
    return start, start + share - 1


# The ports this test run's deployments give their instances: the last RESERVED_BLOCKS
# blocks of RESERVED_BLOCK ports are kept for `reserved_ports`, the rest is shared.
INSTANCE_PORTS = _instance_ports()
RESERVED_BLOCK = 50
RESERVED_BLOCKS = 2
SHARED_PORTS = (INSTANCE_PORTS[0], INSTANCE_PORTS[1] - RESERVED_BLOCKS * RESERVED_BLOCK)


def reserved_ports(block: int) -> tuple[int, int]:
    """Block `block` (0 or 1) of this run's ports, which no deployment is given unless it
    asks for that block: for one whose instances or hosts must not meet another's."""
    assert 0 <= block < RESERVED_BLOCKS
    last = INSTANCE_PORTS[1] - block * RESERVED_BLOCK
    return last - RESERVED_BLOCK + 1, last


def local_addresses(first_port: int) -> str:
    """The loopback network of a deployment whose port range starts at `first_port`:
    127.<first_port / 256>.<first_port % 256>.0/24, so deployments of disjoint port ranges
    (xdist workers, reserved blocks, other checkouts) never meet on an address either, nor
    on the service's default network (127.21.0.0/16), nor on 127.0.0.1 and 127.0.1.1."""
    assert 512 <= first_port <= 65535 and first_port >> 8 != 21
    return f"127.{first_port >> 8}.{first_port & 255}.0/24"


def stock_client(argv: list[str], **environment: str) -> str:
    """What a datastore's own command line client (psql, mariadb, redis-cli) prints, run as
    a user would run it; its password comes in `environment`, never in argv."""
    done = subprocess.run(
        argv,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"{argv[0]} failed: {done.stderr}"
    return done.stdout.strip()


def port_range_env(first: int, last: int) -> dict[str, str]:
    """A deployment's environment for instance ports `first` to `last`, and its instances'
    own addresses (`local_addresses`)."""
    return {
        "TROVE_SVC_PORT_RANGE_START": str(first),
        "TROVE_SVC_PORT_RANGE_END": str(last),
        "TROVE_SVC_LOCAL_ADDRESSES": local_addresses(first),
    }


# Seconds a deployment may take to answer once started (a loaded machine: four test workers
# beside other work).
START_TIMEOUT = 60


@dataclass
class Service:
    """`trove-svc up` in a subprocess, with its own state dir, port and vhost.

    As a newcomer's would, the deployment sets itself up: its own broker account and
    vhost (from the state dir), made with the broker's administrator on first start.
    """

    transport_url: str = "amqp://127.0.0.1:5672/"
    management_url: str = MANAGEMENT
    admin_url: str = BROKER_ADMIN_URL
    state_dir: Path = field(default_factory=lambda: shared_tmp_dir("trove-svc-test-"))
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    # None: `trove-svc up`. Else these parts, each a process of its own (as on several
    # hosts), so a test can stop or kill one.
    parts: tuple[str, ...] | None = None
    # A join file (`trove-svc join-file`) of an existing deployment: this one is a further
    # control-plane node of it, set up with `trove-svc setup --join`.
    join_file: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    part_processes: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.state_dir / "service.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TROVE_SVC_")}
        env.update(
            PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
            TROVE_SVC_STATE_DIR=str(self.state_dir),
            TROVE_SVC_TRANSPORT_URL=self.transport_url,
            TROVE_SVC_RABBIT_MANAGEMENT_URL=self.management_url,
            TROVE_SVC_PORT=str(self.port),
            TROVE_SVC_HEARTBEAT_INTERVAL="1",
            TROVE_SVC_HEARTBEAT_EXPIRY="5",
        )
        # Disjoint from the service's default range (21000-21999); two suites run at once
        # on one machine (two checkouts) each set a range of their own.
        env.update(port_range_env(*SHARED_PORTS))
        env.update(self.extra_env)
        return env

    def setup(self) -> None:
        if self.join_file is not None:
            self.cli("setup", "--join", str(self.join_file))
        else:
            self.cli("setup", "--broker-admin-url", self.admin_url)

    @property
    def amqp_url(self) -> str:
        """The deployment's own broker URL (its account, its vhost)."""
        from trove_svc.bus.broker import amqp_url, load_account

        settings = self.settings()
        return amqp_url(settings, load_account(settings.credentials_path))

    def settings(self) -> Any:
        from trove_svc.process.settings import Settings

        return Settings.from_env(self.env())

    def _spawn(self, *command: str) -> subprocess.Popen[bytes]:
        log = self.log_path.open("ab")
        return subprocess.Popen(
            [str(VENV_BIN / "trove-svc"), *command],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_part(self, part: str) -> subprocess.Popen[bytes]:
        process = self._spawn(part)
        self.part_processes.append((part, process))
        return process

    def pids_of(self, part: str) -> list[int]:
        return [p.pid for name, p in self.part_processes if name == part and p.poll() is None]

    def start(self) -> None:
        self.setup()
        if self.parts is None:
            self.process = self._spawn("up")
        else:
            for part in self.parts:
                self.start_part(part)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/", token=None).status == 200:
                    return
            except OSError:
                pass
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError("trove-svc up exited:\n" + self.log_path.read_text())
            time.sleep(0.2)
        raise RuntimeError(
            f"trove-svc did not answer within {START_TIMEOUT} s:\n" + self.log_path.read_text()
        )

    def stop(self) -> None:
        processes = [p for _, p in self.part_processes]
        if self.process is not None:
            processes.append(self.process)
        for process in processes:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [str(VENV_BIN / "trove-svc"), *args],
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def token(self, project: str, admin: bool = False) -> str:
        return self.cli("token", "create", "--project", project, *(["--admin"] if admin else []))

    def request(
        self, method: str, path: str, token: str | None, body: Any = None, raw: bytes | None = None
    ) -> Response:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token:
            req.add_header("X-Auth-Token", token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            # Above TROVE_SVC_CONFIGURATION_WAIT: a configuration change answers within it.
            with urllib.request.urlopen(req, timeout=60) as resp:
                payload = resp.read()
                status = resp.status
                request_id = resp.headers.get("X-Openstack-Request-Id", "")
        except urllib.error.HTTPError as err:
            payload = err.read()
            status = err.code
            request_id = err.headers.get("X-Openstack-Request-Id", "")
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = None  # not JSON (/metrics, say): see `raw`
        return Response(status, parsed, payload, request_id)

    def wait_for(
        self,
        token: str,
        project: str,
        instance_id: str,
        done: Callable[[dict[str, Any]], bool],
        timeout: float = 120,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            resp = self.request("GET", f"/v1.0/{project}/instances/{instance_id}", token)
            last = resp.body
            if resp.status == 200 and done(resp.body["instance"]):
                return dict(resp.body["instance"])
            if resp.status == 200 and resp.body["instance"]["status"] == "ERROR":
                raise AssertionError(f"instance went to ERROR: {resp.body}")
            time.sleep(0.2)
        raise AssertionError(
            f"instance never got there; last seen: {last}\n" + self.log_path.read_text()[-4000:]
        )

    def create(self, token: str, project: str, name: str, **spec: Any) -> str:
        """Ask for an instance (flavor 1, 1 GB, and what `spec` adds); its id."""
        body = {"instance": {"name": name, "flavorRef": "1", "volume": {"size": 1}, **spec}}
        created = self.request("POST", f"/v1.0/{project}/instances", token, body)
        assert created.status == 200, created.body
        return str(created.body["instance"]["id"])

    def create_healthy(self, token: str, project: str, name: str, **spec: Any) -> dict[str, Any]:
        """Create an instance (as `create`) and wait until it is ACTIVE and HEALTHY."""
        instance_id = self.create(token, project, name, **spec)
        return self.wait_for(token, project, instance_id, active_and_healthy)

    def backup_ended(
        self, token: str, project: str, instance_id: str, name: str, **extra: Any
    ) -> dict[str, Any]:
        """Ask for a backup of the instance and wait until it is COMPLETED or FAILED (or
        two minutes passed); the backup as the API shows it then."""
        body = {"backup": {"name": name, "instance": instance_id, **extra}}
        answer = self.request("POST", f"/v1.0/{project}/backups", token, body)
        assert answer.status == 202, answer.body
        return self.backup_when_ended(token, project, answer.body["backup"]["id"])

    def backup_when_ended(self, token: str, project: str, backup_id: str) -> dict[str, Any]:
        """The backup once it is COMPLETED or FAILED (or as it is after two minutes)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            shown = self.request("GET", f"/v1.0/{project}/backups/{backup_id}", token).body
            if shown["backup"]["status"] in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.2)
        return dict(shown["backup"])

    def wait_gone(self, token: str, project: str, instance_id: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.request("GET", f"/v1.0/{project}/instances/{instance_id}", token)
            if resp.status == 404:
                return
            time.sleep(0.2)
        raise AssertionError(f"instance {instance_id} is still there")

    def cleanup(self) -> None:
        """Stop the service and, should a test have left one, every instance of it."""
        self.stop()
        remove_leftovers(self.state_dir)
        remove_deployment_from_broker(self.settings(), self.admin_url)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def remove_deployment_from_broker(settings: Any, admin_url: str) -> None:
    """The deployment's vhost, account and its instances' guest accounts (never another
    deployment's: xdist workers and other checkouts share the broker)."""
    from trove_svc.operator import setup

    try:
        setup.remove_broker_objects(settings, admin_url)
    except Exception:
        return


def metric(service: Service, name: str, **labels: str) -> float:
    """The sum of the samples of `name` (say `trove_heartbeats_total`) in the service's
    /metrics whose labels include `labels`."""
    text = service.request("GET", "/metrics", None).raw.decode()
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    total = 0.0
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        sample_name, _, sample_labels = sample.partition("{")
        if sample_name == name and all(label in sample_labels for label in wanted):
            total += float(value)
    return total


def orders_instance(service: Service, token: str, project: str, password: str) -> dict[str, Any]:
    """A PostgreSQL instance with databases orders and audit and a user shop (of orders),
    created through the API and waited for until ACTIVE and HEALTHY."""
    body = {
        "instance": {
            "name": "orders",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
            "databases": [{"name": "orders"}, {"name": "audit"}],
            "users": [{"name": "shop", "password": password, "databases": [{"name": "orders"}]}],
        }
    }
    created = service.request("POST", f"/v1.0/{project}/instances", token, body)
    assert created.status == 200, created.body
    assert created.body["instance"]["status"] == "BUILD"
    return service.wait_for(token, project, created.body["instance"]["id"], active_and_healthy)


def unstartable_group(service: Service, token: str, project: str) -> str:
    """A PostgreSQL configuration group the API takes (a value in the engine's own range)
    with which no server here can start: shared_buffers of 8 TB. A create that names it
    fails inside its playbook, at the server's start."""
    body = {
        "configuration": {
            "name": "unstartable",
            "datastore": {"type": "postgresql"},
            "values": {"shared_buffers": 1073741823},
        }
    }
    made = service.request("POST", f"/v1.0/{project}/configurations", token, body)
    assert made.status == 200, made.body
    return str(made.body["configuration"]["id"])


def restore_time_now() -> str:
    """Now, as a restore_time (UTC, to the millisecond)."""
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
    )


def active_and_healthy(instance: dict[str, Any]) -> bool:
    return instance["status"] == "ACTIVE" and instance["operating_status"] == "HEALTHY"


def broker_has(amqp_url: str, queue: str = "", exchange: str = "") -> bool:
    """Whether the vhost of `amqp_url` has `queue` (or `exchange`)."""
    import pika
    import pika.exceptions

    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        if queue:
            channel.queue_declare(queue, passive=True)
        else:
            channel.exchange_declare(exchange, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def guest_queue_exists(amqp_url: str, instance_id: str) -> bool:
    from trove_wire import topology

    return broker_has(amqp_url, queue=topology.guest_queue(instance_id))


def management_request(
    management_url: str, admin_url: str, method: str, path: str, body: Any = None
) -> Any:
    """RabbitMQ's management API at `management_url`, as the administrator whose name and
    password `admin_url` holds."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{management_url}{path}", data=data, method=method)
    parts = urllib.parse.urlsplit(admin_url)
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def _management(service: Service, method: str, path: str) -> Any:
    """RabbitMQ's management API, as the broker's administrator."""
    return management_request(service.management_url, service.admin_url, method, path)


def broker_user_exists(service: Service, user: str) -> bool:
    try:
        _management(service, "GET", f"/api/users/{user}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


def cut_guest_off(service: Service, instance_id: str) -> None:
    """The instance's guest loses the broker, as a network partition would leave it: its
    account's permissions on the deployment's vhost go, and its connections are closed
    (it cannot open new ones). Its datastore stays reachable."""
    from trove_svc.bus.broker import guest_user

    user = guest_user(instance_id)
    vhost = urllib.parse.quote(service.settings().vhost, safe="")
    _management(service, "DELETE", f"/api/permissions/{vhost}/{user}")
    for connection in _management(service, "GET", f"/api/vhosts/{vhost}/connections") or []:
        if connection.get("user") == user:
            name = urllib.parse.quote(connection["name"], safe="")
            _management(service, "DELETE", f"/api/connections/{name}")


def leftovers(service: Service, instance_id: str, os_user: str | None) -> list[str]:
    """What a deleted instance left behind: files, processes, its queue, its account."""
    found = []
    instance_dir = service.state_dir / "instances" / instance_id
    if instance_dir.exists():
        found.append(f"directory {instance_dir}")
    found += [f"process {p}" for p in processes_mentioning(str(instance_dir))]
    found += [f"process {pid}" for pid in pids_working_in(str(instance_dir))]
    from trove_wire import topology

    for queue in (topology.guest_queue(instance_id), topology.reports_queue(instance_id)):
        if broker_has(service.amqp_url, queue=queue):
            found.append(f"queue {queue}")
    if broker_has(service.amqp_url, exchange=topology.guest_exchange(instance_id)):
        found.append(f"exchange {topology.guest_exchange(instance_id)}")
    if broker_user_exists(service, f"guest-{instance_id}"):
        found.append(f"broker account guest-{instance_id}")
    if os_user and os_user != "root":
        if subprocess.run(["id", os_user], capture_output=True).returncode == 0:
            found.append(f"account {os_user}")
    return found
