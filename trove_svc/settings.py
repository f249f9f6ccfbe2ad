"""One settings object, built once by an entry point and passed down.

Values come from the environment (``TROVE_SVC_*``) and an optional TOML file named by
``TROVE_SVC_CONFIG``; the environment wins. No other module reads the environment.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "TROVE_SVC_"


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
    # are used unless the URL names them.
    transport_url: str = "amqp://127.0.0.1:5672/"
    # The deployment's vhost; empty: one derived from the state directory, so two
    # deployments on one broker never meet.
    broker_vhost: str = ""
    # RabbitMQ's management API (per-instance broker accounts); empty: the transport's host.
    rabbit_management_url: str = ""
    # Files made by `trove-svc setup` (0600); empty: in the state directory.
    broker_credentials_file: str = ""
    service_key_file: str = ""
    host: str = "127.0.0.1"
    port: int = 8779
    api_workers: int = 2
    taskmanager_workers: int = 4
    ansible_dir: Path = PROJECT_ROOT
    ansible_strategy: str = "mitogen_linear"
    call_timeout: float = 10.0
    task_timeout: float = 600.0
    # Tearing down after a failed or timed-out task gets its own, separate limit.
    cleanup_timeout: float = 300.0
    # The datastore of a create that names none (Trove's default_datastore).
    default_datastore: str = "postgresql"
    # A task manager's claim on a task lasts this long unless renewed (every third of it).
    task_lease: float = 30.0
    # Limits on waiting: an instance (or task) still waiting after this long goes to ERROR.
    limit_queued: float = 600.0
    limit_build: float = 1200.0
    limit_reboot: float = 900.0
    limit_resize: float = 900.0
    limit_shutdown: float = 900.0
    # The health check wants a task manager and a conductor seen within this long.
    worker_seen_within: float = 30.0
    # A guest message older than this (or replayed within it) is refused.
    message_window: float = 60.0
    heartbeat_interval: float = 3.0
    # No heartbeat for this long: the guest (or its host) is gone, operating_status SHUTDOWN.
    heartbeat_expiry: float = 15.0
    port_range_start: int = 21000
    port_range_end: int = 21999
    runs_kept: int = 200
    max_body_bytes: int = 1_048_576
    instance_user_prefix: str = "trove-"
    keystone_url: str = ""
    keystone_cache_seconds: float = 30.0
    admin_role: str = "admin"
    quota_instances: int = 10
    quota_volume_gb: int = 40
    quota_backups: int = 50
    # Swappable factories, so tests replace a field instead of patching a module.
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()), compare=False, repr=False)
    new_secret: Callable[[], str] = field(
        default=lambda: secrets.token_urlsafe(24), compare=False, repr=False
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
        path = unquote(urlsplit(self.transport_url).path.lstrip("/"))
        if path:
            return path
        if self.broker_vhost:
            return self.broker_vhost
        digest = hashlib.sha256(str(self.state_dir.resolve()).encode()).hexdigest()
        return f"trove-svc-{digest[:10]}"

    @property
    def management_url(self) -> str:
        if self.rabbit_management_url:
            return self.rabbit_management_url.rstrip("/")
        return f"http://{urlsplit(self.transport_url).hostname or '127.0.0.1'}:15672"

    @property
    def runs_as_root(self) -> bool:
        return os.geteuid() == 0

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **overrides)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_file = env.get(ENV_PREFIX + "CONFIG")
        if config_file:
            values.update(tomllib.loads(Path(config_file).read_text()))
        for f in fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key in env:
                values[f.name] = env[key]
        return cls(**{name: _coerce(cls, name, value) for name, value in values.items()})


def _coerce(cls: type[Settings], name: str, value: Any) -> Any:
    known = {f.name: f for f in fields(cls)}
    if name not in known or name in {"clock", "new_id", "new_secret"}:
        raise ValueError(f"unknown setting {name!r}")
    spec = known[name]
    factory: Any = spec.default_factory
    default: Any = factory() if spec.default is MISSING else spec.default
    if isinstance(default, Path):
        return Path(value).expanduser()
    if isinstance(default, bool):
        return str(value).lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return str(value)


def environment_for(settings: Settings) -> dict[str, str]:
    """The environment that hands these settings to a child process of the service."""
    skip = {"clock", "new_id", "new_secret"}
    return {
        ENV_PREFIX + f.name.upper(): str(getattr(settings, f.name))
        for f in fields(settings)
        if f.name not in skip
    }
