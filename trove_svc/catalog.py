"""The datastores the host can serve and the default flavors, made sure of at start."""

from __future__ import annotations

import glob
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from trove_svc.store.models import Datastore, DatastoreVersion, Flavor

DEFAULT_FLAVORS = (
    ("1", "small", 512, 1),
    ("2", "medium", 1024, 1),
    ("3", "large", 2048, 2),
)


@dataclass(frozen=True)
class HostDatastore:
    name: str
    version: str
    bin_dir: str


def find_postgresql() -> HostDatastore | None:
    """The newest PostgreSQL server whose binaries the host has."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    postgres = candidates[-1] if candidates else shutil.which("postgres")
    if not postgres:
        return None
    version = _version_of(postgres, r"(\d+)(?:\.\d+)?")
    return HostDatastore("postgresql", version, str(Path(postgres).parent)) if version else None


def _version_of(binary: str, pattern: str) -> str | None:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(pattern, out.stdout)
    return match.group(1) if match else None


def find_mariadb() -> HostDatastore | None:
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    if not server or not shutil.which("mariadb-install-db"):
        return None
    version = _version_of(server, r"Ver (\d+\.\d+)")
    return HostDatastore("mariadb", version, str(Path(server).parent)) if version else None


def find_redis() -> HostDatastore | None:
    server = shutil.which("redis-server")
    if not server:
        return None
    version = _version_of(server, r"v=(\d+\.\d+)")
    # ACL users need Redis 6 or later.
    if not version or int(version.split(".")[0]) < 6:
        return None
    return HostDatastore("redis", version, str(Path(server).parent))


def host_datastores() -> list[HostDatastore]:
    found = [find_postgresql(), find_mariadb(), find_redis()]
    return [d for d in found if d is not None]


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "trove-svc:" + ":".join(parts)))


def ensure_defaults(datastores: list[HostDatastore]) -> None:
    """Register the host's datastores and the default flavors (idempotent)."""
    for flavor_id, name, ram, vcpus in DEFAULT_FLAVORS:
        Flavor.get_or_create(id=flavor_id, defaults={"name": name, "ram": ram, "vcpus": vcpus})
    for found in datastores:
        datastore, _ = Datastore.get_or_create(
            name=found.name, defaults={"id": _stable_id(found.name)}
        )
        version, created = DatastoreVersion.get_or_create(
            datastore=datastore,
            name=found.version,
            defaults={"id": _stable_id(found.name, found.version), "bin_dir": found.bin_dir},
        )
        if not created and version.bin_dir != found.bin_dir:
            version.bin_dir = found.bin_dir
            version.save()
        if datastore.default_version_id is None:
            datastore.default_version_id = version.id
            datastore.save()
