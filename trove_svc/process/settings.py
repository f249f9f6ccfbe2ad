"""One settings object, built once by an entry point and passed down.

Values come from the environment (``TROVE_SVC_*``) and an optional TOML file named by
``TROVE_SVC_CONFIG``; the environment wins. No other module reads the environment.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import os
import re
import secrets
import time
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from trove_wire import datastores

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "TROVE_SVC_"
# RabbitMQ's default vhost, where an account the transport URL names lives when the URL
# names no vhost.
DEFAULT_VHOST = "/"


def _default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/trove-svc")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "trove-svc"


@dataclass(frozen=True)
class Settings:
    """Every knob of the service; the README lists each one."""

    state_dir: Path = field(default_factory=_default_state_dir)
    database_url: str = ""
    # Where RabbitMQ is. The deployment's own account (made by `trove-svc setup`) and vhost
    # are used unless the URL names them; an account named without a vhost is on `/`.
    transport_url: str = "amqp://127.0.0.1:5672/"
    # The deployment's vhost; empty: one derived from the state directory, so two
    # deployments on one broker never meet.
    broker_vhost: str = ""
    # RabbitMQ's management API (per-instance broker accounts); empty: the transport's host.
    rabbit_management_url: str = ""
    # Files made by `trove-svc setup` (0600); empty: in the state directory.
    broker_credentials_file: str = ""
    service_key_file: str = ""
    # Where instances live (docs/compute-providers.md): local (this machine), ssh (a pool
    # of hosts named by host_pool) or openstack (Nova servers in openstack_cloud).
    compute_provider: str = "local"
    # The ssh provider's pool: an Ansible inventory file (hosts with ansible_host, ...).
    host_pool: str = ""
    # host[:port] where guests on other hosts reach the broker; empty: the transport URL's.
    guest_broker_address: str = ""
    # The openstack provider: a clouds.yaml cloud name, and what every server is made of.
    # A trove-svc flavor maps to the Nova flavor of the same name.
    openstack_cloud: str = ""
    openstack_image: str = ""
    openstack_network: str = ""
    openstack_key_name: str = ""
    openstack_ssh_user: str = "debian"
    openstack_ssh_key_file: str = ""
    host: str = "127.0.0.1"
    port: int = 8779
    api_workers: int = 2
    taskmanager_workers: int = 4
    ansible_dir: Path = PROJECT_ROOT
    ansible_strategy: str = "mitogen_linear"
    # Runs are forked from a process that has Ansible loaded (taskmanager/playbook_server):
    # about 0.3 s of a core less per run here. False: each run is a new ansible-playbook.
    ansible_fork_server: bool = True
    call_timeout: float = 10.0
    # An attach, detach or change of a configuration group answers once its values are in
    # effect on the instances it reaches (as Trove's does), waiting up to this long.
    configuration_wait: float = 30.0
    task_timeout: float = 600.0
    # Tearing down after a failed or timed-out task gets its own, separate limit.
    cleanup_timeout: float = 300.0
    # The datastore of a create that names none (Trove's default_datastore).
    default_datastore: str = "postgresql"
    # A task manager's claim on a task lasts this long unless renewed (every third of it, at
    # most 2 s apart); a run that could not renew stops itself shortly before it runs out.
    task_lease: float = 30.0
    # Limits on waiting: an instance (or task) still waiting after this long goes to ERROR.
    limit_queued: float = 600.0
    limit_build: float = 1200.0
    limit_reboot: float = 900.0
    limit_resize: float = 900.0
    limit_shutdown: float = 900.0
    # A promotion, an ejection or a detach of a replica.
    limit_replication: float = 900.0
    # A source with replicas whose datastore fails, or whose guest is silent, for longer
    # than this is failed over to its most advanced replica (0: never by itself).
    failover_after: float = 10.0
    # A failed-over source whose guest reports again rejoins its set by itself, as a
    # replica of the new source (False: it stays fenced until asked to rejoin).
    auto_rejoin: bool = True
    # A source with replicas holds a lease this long from each healthy heartbeat; its guest
    # fences it (and a watchdog stops its server) before the lease runs out unrenewed, so a
    # failover that waits the lease out never meets a writable old source. 0: no leases.
    source_lease: float = 10.0
    # S3-compatible object storage for backups whose strategy says s3: its endpoint, and
    # a 0600 JSON file {"access_key": ..., "secret_key": ...} (empty: s3.json in the state
    # directory).
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_credentials_file: str = ""
    # The directory of every instance's backup repository (empty: `backups` in the state
    # directory). Control-plane nodes that share a deployment share it too (one filesystem
    # every node mounts): whichever node's task manager copies a backup there, or restores
    # one, finds the others'.
    backup_repositories: str = ""
    # A backup's guest that reports nothing for this long: the backup FAILED.
    limit_backup: float = 3600.0
    # MariaDB and Redis backups write no more than this many bytes a second to their
    # repository (0: as fast as they go), so a backup leaves its instance's disk the room
    # to serve. pgBackRest has no such limit.
    backup_max_rate: int = 0
    # The health check wants a task manager and a conductor seen within this long.
    worker_seen_within: float = 30.0
    # A guest message older than this (or replayed within it) is refused.
    message_window: float = 60.0
    # text, or json: one JSON object per line from every process, the guests' included.
    log_format: str = "text"
    # Where a task manager or conductor run alone serves its /metrics (0: it does not);
    # `trove-svc up` serves every part's through the API's /metrics.
    taskmanager_metrics_port: int = 0
    conductor_metrics_port: int = 0
    heartbeat_interval: float = 3.0
    # No heartbeat for this long: the guest (or its host) is gone, operating_status SHUTDOWN.
    heartbeat_expiry: float = 15.0
    # What one guest may report: this many reports a second, in bursts of up to
    # report_burst; the conductor drops the rest unopened. At most report_backlog reports
    # of one guest wait for the conductor; past that the broker refuses new ones.
    report_rate: float = 5.0
    report_burst: int = 30
    report_backlog: int = 1000
    # The local provider's instances each listen on an address of their own from this
    # network, at their datastore's standard port (127.0.0.1 and Debian's 127.0.1.1 are
    # never given). Empty: on 127.0.0.1, at a port of the range below.
    local_addresses: str = "127.21.0.0/16"
    # Ports given to instances that have no address of their own.
    port_range_start: int = 21000
    port_range_end: int = 21999
    runs_kept: int = 200
    max_body_bytes: int = 1_048_576
    # JSON bodies nesting arrays or objects deeper than this are refused before parsing.
    max_body_depth: int = 32
    instance_user_prefix: str = "trove-"
    # Started as root, the service's own processes (API, task manager, conductor, the
    # operator's commands) run as this unprivileged account, which `trove-svc setup` makes;
    # root is reached only through Ansible's become (sudo), in the steps that need it.
    service_user: str = "trove-svc"
    # Instances on this machine run as accounts of their own (made, and started, through
    # Ansible's become); without, they run as the service's account. Default: when the
    # service is started as root.
    instance_accounts: bool = field(default_factory=lambda: os.geteuid() == 0)
    # Users' and root's passwords must be at least this long: 8 by default, NIST SP
    # 800-63B's floor for a password a person chooses, and what Trove's tests and RDS accept.
    password_min_length: int = 8
    keystone_url: str = ""
    keystone_cache_seconds: float = 30.0
    admin_role: str = "admin"
    # Warm instances kept ready per datastore version and flavor, made ahead of demand so
    # that a create takes one (`datastore:version:flavor=size`, comma-separated; empty: none).
    warm_pool: str = ""
    quota_instances: int = 10
    quota_volume_gb: int = 40
    quota_backups: int = 50
    # Swappable factories, so tests replace a field instead of patching a module.
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()), compare=False, repr=False)
    new_secret: Callable[[], str] = field(
        default=lambda: secrets.token_urlsafe(GENERATED_SECRET_BYTES), compare=False, repr=False
    )

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'trove-svc.db'}"

    @property
    def instances_dir(self) -> Path:
        return self.state_dir / "instances"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def secrets_dir(self) -> Path:
        return self.state_dir / "secrets"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def s3_credentials_path(self) -> Path:
        return Path(self.s3_credentials_file or self.state_dir / "s3.json")

    @property
    def backups_dir(self) -> Path:
        return Path(self.backup_repositories or self.state_dir / "backups")

    @property
    def metrics_dir(self) -> Path:
        return self.state_dir / "metrics"

    @property
    def credentials_path(self) -> Path:
        return Path(self.broker_credentials_file or self.state_dir / "broker.json")

    @property
    def service_key_path(self) -> Path:
        return Path(self.service_key_file or self.state_dir / "service.key")

    @property
    def vhost(self) -> str:
        """The transport URL's vhost, else `broker_vhost`; else, for an account the URL
        names (one the operator made, as Trove's `amqp://user:pw@host:5672/`), the broker's
        default vhost `/`, as AMQP clients read that URL; else the deployment's own vhost,
        which `trove-svc setup` makes with the account it makes."""
        parts = urlsplit(self.transport_url)
        path = unquote(parts.path.lstrip("/"))
        if path:
            return path
        if self.broker_vhost:
            return self.broker_vhost
        if parts.username is not None:
            return DEFAULT_VHOST
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()
        return f"trove-svc-{digest[:10]}"

    @property
    def management_url(self) -> str:
        """RabbitMQ's management API: comma-separated, one per broker node, each tried in
        turn; by default port 15672 of each node of the transport URL."""
        if self.rabbit_management_url:
            return ",".join(
                url.strip().rstrip("/") for url in self.rabbit_management_url.split(",")
            )
        return ",".join(f"http://{host}:15672" for host in broker_hosts(self.transport_url))

    @property
    def warm_pools(self) -> dict[WarmPoolKey, int]:
        """How many warm instances to keep, per datastore version and flavor."""
        return parse_warm_pool(self.warm_pool)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **overrides)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings, every bad one named with why (SettingsError), or none."""
        env = os.environ if environ is None else environ
        values, problems = _config_file_values(env.get(ENV_PREFIX + "CONFIG"))
        for name in _FIELDS:
            key = ENV_PREFIX + name.upper()
            if key in env:
                values[name] = env[key]
        state_dir = Path(str(values.get("state_dir") or _default_state_dir())).expanduser()
        for name, value in joined_settings(state_dir).items():
            values.setdefault(name, value)
        coerced: dict[str, Any] = {}
        for name, value in values.items():
            if name not in _FIELDS:
                continue
            try:
                coerced[name] = _coerce(name, value)
            except ValueError as exc:
                problems.append(f"{ENV_PREFIX}{name.upper()}={str(value)[:40]!r}: {exc}")
        if problems:
            raise SettingsError(problems)
        settings = cls(**coerced)
        problems = settings.problems()
        if problems:
            raise SettingsError(problems)
        return settings

    def problems(self) -> list[str]:
        """Values of the right type that still make no sense, each with why."""
        found = []
        for name, (check, why) in _RULES.items():
            if not check(getattr(self, name)):
                found.append(f"{ENV_PREFIX}{name.upper()}={getattr(self, name)!r}: {why}")
        if self.compute_provider == "ssh" and not self.host_pool:
            found.append(f"{ENV_PREFIX}COMPUTE_PROVIDER=ssh needs {ENV_PREFIX}HOST_POOL")
        if self.compute_provider == "openstack" and not self.openstack_cloud:
            found.append(
                f"{ENV_PREFIX}COMPUTE_PROVIDER=openstack needs {ENV_PREFIX}OPENSTACK_CLOUD"
            )
        if self.source_lease and self.heartbeat_interval * 2 > self.source_lease:
            found.append(
                f"{ENV_PREFIX}SOURCE_LEASE={self.source_lease:g} must be at least twice "
                f"{ENV_PREFIX}HEARTBEAT_INTERVAL={self.heartbeat_interval:g}: a lease is renewed "
                "by each heartbeat, and a source would fence itself between two"
            )
        try:
            parse_warm_pool(self.warm_pool)
        except ValueError as exc:
            found.append(f"{ENV_PREFIX}WARM_POOL={self.warm_pool!r}: {exc}")
        if self.warm_pool and self.compute_provider != "local":
            found.append(
                f"{ENV_PREFIX}WARM_POOL is for the local provider only, not "
                f"{ENV_PREFIX}COMPUTE_PROVIDER={self.compute_provider}"
            )
        if self.compute_provider == "local":
            found.extend(_socket_paths_too_long(self.state_dir, self.instances_dir))
        if self.port_range_start > self.port_range_end:
            found.append(
                f"{ENV_PREFIX}PORT_RANGE_START={self.port_range_start} is above "
                f"{ENV_PREFIX}PORT_RANGE_END={self.port_range_end}"
            )
        return found


# What a Unix socket's path may hold (sun_path less its terminating NUL).
MAX_SOCKET_PATH = 107


def _socket_paths_too_long(state_dir: Path, instances_dir: Path) -> list[str]:
    """A local instance's server makes its socket in its directory under the state
    directory: one that would not fit there fails every create, so it is refused here."""
    instance_dir = instances_dir / str(uuid.UUID(int=0))
    longest = max(
        (instance_dir / spec.name / spec.socket_name for spec in datastores.REGISTRY.values()),
        key=lambda path: len(os.fsencode(path)),
    )
    length = len(os.fsencode(longest))
    if length <= MAX_SOCKET_PATH:
        return []
    return [
        f"{ENV_PREFIX}STATE_DIR={str(state_dir)!r}: an instance's server socket "
        f"would be {length} bytes long ({longest}), over the {MAX_SOCKET_PATH} a socket's "
        f"path may hold: choose one of at most "
        f"{len(os.fsencode(state_dir)) - (length - MAX_SOCKET_PATH)} bytes"
    ]


@dataclass(frozen=True, order=True)
class WarmPoolKey:
    """A warm pool: the datastore, its version and the flavor (by id) of its instances."""

    datastore: str
    version: str
    flavor: str

    def __str__(self) -> str:
        return f"{self.datastore}:{self.version}:{self.flavor}"


# datastore:version:flavor=size; names as the catalog has them (letters, digits, . _ -).
_WARM_POOL_ENTRY = re.compile(
    r"(?P<datastore>[a-z][a-z0-9_-]*):(?P<version>[A-Za-z0-9][A-Za-z0-9._-]*)"
    r":(?P<flavor>[A-Za-z0-9][A-Za-z0-9._-]*)=(?P<size>[0-9]+)"
)
# A pool larger than this is a typo, not a plan: each warm instance holds an account,
# a data directory and an address.
WARM_POOL_MAX_SIZE = 50


def parse_warm_pool(text: str) -> dict[WarmPoolKey, int]:
    """`postgresql:15:1=2,redis:7.0:1=1` as {pool: size}; ValueError saying what is wrong
    with the first bad entry."""
    pools: dict[WarmPoolKey, int] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        match = _WARM_POOL_ENTRY.fullmatch(entry)
        if match is None:
            raise ValueError(
                f"{entry[:40]!r} is not datastore:version:flavor=size "
                "(for example postgresql:15:1=2)"
            )
        key = WarmPoolKey(match["datastore"], match["version"], match["flavor"])
        if key.datastore not in datastores.REGISTRY:
            known = ", ".join(sorted(datastores.REGISTRY))
            raise ValueError(f"{entry!r}: no datastore {key.datastore!r} (there are {known})")
        size = int(match["size"])
        if size > WARM_POOL_MAX_SIZE:
            raise ValueError(f"{entry!r}: a pool holds at most {WARM_POOL_MAX_SIZE} instances")
        if key in pools:
            raise ValueError(f"{key} is given twice")
        pools[key] = size
    return pools


def _broker_nodes(transport_url: str) -> list[str]:
    """The `host[:port]` of each broker node the transport URL names (comma-separated: a
    RabbitMQ cluster's nodes), as written."""
    return urlsplit(transport_url).netloc.rpartition("@")[2].split(",")


def broker_hosts(transport_url: str) -> list[str]:
    """The host of each broker node the transport URL names; 127.0.0.1 if it names none."""
    hosts = [urlsplit(f"//{node.strip()}").hostname for node in _broker_nodes(transport_url)]
    return [host or "127.0.0.1" for host in hosts]


def _config_file_values(config_file: str | None) -> tuple[dict[str, Any], list[str]]:
    """The TOML file's values, and a problem for each key that is no setting."""
    if not config_file:
        return {}, []
    try:
        loaded = tomllib.loads(Path(config_file).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError([f"TROVE_SVC_CONFIG: cannot read {config_file}: {exc}"]) from exc
    values = {k.lower(): v for k, v in loaded.items()}
    return values, [
        f"{config_file}: {key!r} is not a setting" for key in values if key not in _FIELDS
    ]


# What the nodes of one deployment share (trove_svc.operator.join): `trove-svc setup --join`
# keeps them in this file of the state directory, beneath the TOML file and the environment.
JOINED_FILE = "joined.json"
JOINED_SETTINGS = ("database_url", "broker_vhost", "transport_url", "rabbit_management_url")


def joined_settings(state_dir: Path) -> dict[str, str]:
    """The shared settings a joined node keeps (none unless `setup --join` ran)."""
    try:
        raw = json.loads((state_dir / JOINED_FILE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsError([f"{state_dir / JOINED_FILE}: cannot read it: {exc}"]) from exc
    return {name: str(raw[name]) for name in JOINED_SETTINGS if raw.get(name)}


class SettingsError(ValueError):
    """Settings that cannot be used; `problems` names each and says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_SWAPPABLE = {"clock", "new_id", "new_secret"}
_FIELDS = {f.name: f for f in fields(Settings) if f.name not in _SWAPPABLE}


def _port(value: int) -> bool:
    return 1 <= value <= 65535


# Generated passwords (root, guests, replication) are 32 characters: the password policy's
# minimum may not ask for more.
GENERATED_SECRET_BYTES = 24
GENERATED_SECRET_LENGTH = 32


def _ipv4_network(value: str) -> bool:
    try:
        ipaddress.IPv4Network(value)
    except ValueError:
        return False
    return True


def _transport_url(value: str) -> bool:
    """amqp(s)://, then one or more `host[:port]`s, comma-separated, each with a port
    (if any) that is a number."""
    nodes = _broker_nodes(value)
    try:
        for node in nodes:
            urlsplit(f"//{node}").port  # noqa: B018 (raises ValueError if no number)
    except ValueError:
        return False
    return urlsplit(value).scheme in ("amqp", "amqps") and all(nodes)


def _positive(value: float) -> bool:
    return value > 0


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "port": (_port, "a TCP port is 1 to 65535"),
    "port_range_start": (_port, "a TCP port is 1 to 65535"),
    "port_range_end": (_port, "a TCP port is 1 to 65535"),
    "local_addresses": (
        lambda v: v == "" or _ipv4_network(v),
        "an IPv4 network such as 127.21.0.0/16 (host bits zero), or empty",
    ),
    "taskmanager_metrics_port": (lambda v: v == 0 or _port(v), "0 (off) or a TCP port"),
    "conductor_metrics_port": (lambda v: v == 0 or _port(v), "0 (off) or a TCP port"),
    "api_workers": (_positive, "at least 1"),
    "taskmanager_workers": (_positive, "at least 1"),
    "call_timeout": (_positive, "seconds, more than 0"),
    "configuration_wait": (_positive, "seconds, more than 0"),
    "task_timeout": (_positive, "seconds, more than 0"),
    "cleanup_timeout": (_positive, "seconds, more than 0"),
    "task_lease": (_positive, "seconds, more than 0"),
    "heartbeat_interval": (_positive, "seconds, more than 0"),
    "heartbeat_expiry": (_positive, "seconds, more than 0"),
    "message_window": (_positive, "seconds, more than 0"),
    "report_rate": (_positive, "reports a second, more than 0"),
    "report_burst": (_positive, "reports, at least 1"),
    "report_backlog": (_positive, "reports, at least 1"),
    "limit_queued": (_positive, "seconds, more than 0"),
    "limit_build": (_positive, "seconds, more than 0"),
    "limit_reboot": (_positive, "seconds, more than 0"),
    "limit_resize": (_positive, "seconds, more than 0"),
    "limit_shutdown": (_positive, "seconds, more than 0"),
    "limit_backup": (_positive, "seconds, more than 0"),
    "backup_max_rate": (lambda v: v >= 0, "bytes a second, 0 (no limit) or more"),
    "limit_replication": (_positive, "seconds, more than 0"),
    "failover_after": (lambda v: v >= 0, "seconds, 0 (never) or more"),
    "source_lease": (lambda v: v == 0 or 3 <= v <= 60, "seconds, 0 (no leases) or 3 to 60"),
    "max_body_bytes": (_positive, "bytes, more than 0"),
    "max_body_depth": (_positive, "levels, at least 1"),
    "password_min_length": (
        lambda v: 1 <= v <= GENERATED_SECRET_LENGTH,
        f"characters, 1 to {GENERATED_SECRET_LENGTH} (the length of generated passwords)",
    ),
    "backup_repositories": (
        lambda v: v == "" or os.path.isabs(v),
        "an absolute path, or empty (backups in the state directory)",
    ),
    "runs_kept": (_positive, "at least 1"),
    "log_format": (lambda v: v in ("text", "json"), "text or json"),
    "ansible_strategy": (
        lambda v: v in ("mitogen_linear", "linear", "free"),
        "mitogen_linear, linear or free",
    ),
    "compute_provider": (
        lambda v: v in ("local", "ssh", "openstack"),
        "local, ssh or openstack",
    ),
    "transport_url": (
        _transport_url,
        "an amqp:// URL, naming one broker node or a cluster's nodes comma-separated "
        "(amqp://rabbit-1:5672,rabbit-2:5672,rabbit-3:5672/)",
    ),
    "service_user": (
        lambda v: bool(re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", v)),
        "an account name: lower-case letters, digits, _ and -, at most 32",
    ),
}


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for TROVE_SVC_* variables that are no setting (likely typos)."""
    env = os.environ if environ is None else environ
    names = [ENV_PREFIX + name.upper() for name in _FIELDS] + [ENV_PREFIX + "CONFIG"]
    found = []
    for key in sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in names):
        near = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean {near[0]}?" if near else ""
        found.append(f"{key} is not a setting of trove-svc{hint}")
    return found


def _coerce(name: str, value: Any) -> Any:
    spec = _FIELDS[name]
    factory: Any = spec.default_factory
    default: Any = factory() if spec.default is MISSING else spec.default
    if isinstance(default, Path):
        return Path(str(value)).expanduser()
    if isinstance(default, bool):
        text = str(value).lower()
        if text not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise ValueError("true or false")
        return text in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ValueError("a whole number") from exc
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError("a number (seconds)") from exc
    return str(value)


def environment_for(settings: Settings) -> dict[str, str]:
    """The environment that hands these settings to a child process of the service."""
    skip = {"clock", "new_id", "new_secret"}
    return {
        ENV_PREFIX + f.name.upper(): str(getattr(settings, f.name))
        for f in fields(settings)
        if f.name not in skip
    }
