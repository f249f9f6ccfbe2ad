"""Where a new instance goes on the ssh provider's pool, and what each host has in use.

A create is placed before anything is built: on a host with room for its flavor's memory
and its volume (most free memory first), never on its source's host when another has
room (a replica), never on a host that stopped answering until it answers again.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import peewee

from trove_svc.compute import pool
from trove_svc.compute.pool import PoolHost
from trove_svc.domain import errors
from trove_svc.domain.audit import redact
from trove_svc.store import locks
from trove_svc.store.models import Flavor, Instance, database_proxy
from trove_svc.store.models import PoolHost as HostMark

LOG = logging.getLogger(__name__)

# How long a host that stopped answering gets to answer before it is skipped again.
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class HostUse:
    host: PoolHost
    memory_mb: int
    disk_gb: int
    instances: int
    unreachable_since: float | None
    unreachable_reason: str | None

    @property
    def free_memory_mb(self) -> float:
        return float("inf") if self.host.memory_mb is None else self.host.memory_mb - self.memory_mb

    @property
    def free_disk_gb(self) -> float:
        return float("inf") if self.host.disk_gb is None else self.host.disk_gb - self.disk_gb

    def fits(self, memory_mb: int, disk_gb: int) -> bool:
        return self.free_memory_mb >= memory_mb and self.free_disk_gb >= disk_gb


@contextmanager
def placing() -> Iterator[None]:
    """A transaction that holds the placement lock from its start. Placements on the pool
    happen one at a time, across API processes and nodes: what one reads of a host's use,
    no other changes until it has recorded its own instance."""
    with locks.exclusive(database_proxy.obj, "placement"):
        yield


def use_of(hosts: list[PoolHost]) -> list[HostUse]:
    """Each host with what its instances take (flavor memory, volume size) and its mark."""
    names = [h.name for h in hosts]
    taken = {
        row.server: row
        for row in Instance.select(
            Instance.server,
            peewee.fn.SUM(Flavor.ram).alias("memory_mb"),
            peewee.fn.SUM(Instance.volume_size).alias("disk_gb"),
            peewee.fn.COUNT(Instance.id).alias("instances"),
        )
        .join(Flavor)
        .where(Instance.provider == "ssh", Instance.server.in_(names))
        .group_by(Instance.server)
    }
    marks = {m.name: m for m in HostMark.select().where(HostMark.name.in_(names))}
    used = []
    for host in hosts:
        row = taken.get(host.name)
        mark = marks.get(host.name)
        used.append(
            HostUse(
                host=host,
                memory_mb=int(row.memory_mb or 0) if row else 0,
                disk_gb=int(row.disk_gb or 0) if row else 0,
                instances=int(row.instances or 0) if row else 0,
                unreachable_since=mark.unreachable_since if mark else None,
                unreachable_reason=mark.unreachable_reason if mark else None,
            )
        )
    return used


def _answers(host: PoolHost) -> bool:
    try:
        with socket.create_connection((host.address, host.ssh_port), timeout=PROBE_TIMEOUT):
            return True
    except OSError:
        return False


def usable(use: HostUse) -> bool:
    """A host not marked unreachable, or one marked that answers again (the mark goes)."""
    if use.unreachable_since is None:
        return True
    if not _answers(use.host):
        return False
    mark_reachable(use.host.name)
    return True


def place(pool_file: str, flavor: Flavor, volume_gb: int, away_from: str | None) -> PoolHost:
    """The host for a new instance; 409 (Conflict) when none has room."""
    used = use_of(pool.hosts(pool_file))
    fitting = [u for u in used if u.fits(flavor.ram, volume_gb)]
    if not fitting:
        # The pool's hosts and their use are the operator's to see (/mgmt/hosts, the log).
        LOG.info("no room for %s MB and %s GB: %s", flavor.ram, volume_gb, _room(used))
        raise errors.Conflict(
            f"No host in the pool has room for flavor {flavor.name} ({flavor.ram} MB) and a "
            f"{volume_gb} GB volume."
        )
    answering = [u for u in fitting if usable(u)]
    if not answering:
        LOG.warning(
            "no host with room answers: %s",
            "; ".join(f"{u.host.name}: {u.unreachable_reason}" for u in fitting),
        )
        raise errors.Conflict("No host in the pool with room for this instance answers.")
    elsewhere = [u for u in answering if u.host.name != away_from] or answering
    best = min(elsewhere, key=lambda u: (-u.free_memory_mb, u.instances, u.host.name))
    return best.host


def _room(used: list[HostUse]) -> str:
    return (
        "; ".join(
            f"{u.host.name}: {_amount(u.free_memory_mb, 'MB')} memory, "
            f"{_amount(u.free_disk_gb, 'GB')} disk free"
            for u in used
        )
        or "the pool has no hosts"
    )


def _amount(value: float, unit: str) -> str:
    return "unlimited" if value == float("inf") else f"{int(value)} {unit}"


def mark_unreachable(name: str, now: float, reason: str) -> None:
    """Skip the host for placements until it answers again."""
    reason = redact(reason)[:1000]
    try:
        HostMark.create(name=name, unreachable_since=now, unreachable_reason=reason)
    except peewee.IntegrityError:
        HostMark.update(unreachable_since=now, unreachable_reason=reason).where(
            HostMark.name == name
        ).execute()


def mark_reachable(name: str) -> None:
    HostMark.update(unreachable_since=None, unreachable_reason=None).where(
        HostMark.name == name
    ).execute()


def require_room_to_grow(pool_file: str, server: str, memory_mb: int, disk_gb: int) -> None:
    """A resize on a pool host: 409 unless the host has room for what it adds."""
    (use,) = use_of([pool.host(pool_file, server)])
    if not use.fits(memory_mb, disk_gb):
        LOG.info("no room on %s for a resize: %s", server, _room([use]))
        raise errors.Conflict(
            f"The instance's host has no room for this resize ({max(memory_mb, 0)} MB more "
            f"memory, {max(disk_gb, 0)} GB more disk)."
        )
