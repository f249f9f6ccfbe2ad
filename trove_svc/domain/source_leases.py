"""A source's lease: how long a source with replicas may take writes without hearing from
the control plane again.

The conductor grants one for each healthy heartbeat of a source whose guest knows leases:
it records `ServiceStatus.lease_until` (receipt + lease) first (once the guest says it
holds a lease: it fences itself, and its watchdog is armed), then tells the guest, which
counts the lease from when it sent that heartbeat, less a margin, and fences its datastore
when it runs out unrenewed (`trove_guest.lease`). The store's end is therefore never before
the guest's. A failover of a source that cannot be fenced waits for `lease_until` to pass
(`trove_svc.taskmanager.replication_flows`), and no lease is granted once its failover
started (status EJECT), so that end no longer moves. A guest that holds a lease its
instance no longer needs (its replicas gone, or failed over) is released from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peewee import fn

from trove_svc.domain import replication_sets, status, tasks
from trove_svc.store.models import Instance, ServiceStatus, Task


@dataclass(frozen=True)
class Grant:
    until: float
    # A fence the lease's lapse made may be undone: no switchover, failover or set-wide
    # change of the source's set is under way.
    resume: bool


def grant(instance_id: str, now: float, lease: float, held: bool) -> Grant | None:
    """A lease until `now + lease` for a source with replicas that is not being failed
    over; None for any other instance, or when a later lease is recorded already. It is
    recorded only where the guest says it `held` one already (so it is one that fences
    itself, armed with its watchdog): the failover trusts only a recorded lease, and a
    first grant the guest never got is never trusted."""
    until = now + lease
    if held:
        recorded = (
            ServiceStatus.update(lease_until=until)
            .where(
                (ServiceStatus.instance == instance_id)
                & ServiceStatus.instance.in_(_source(instance_id))
                & (ServiceStatus.lease_until.is_null() | (ServiceStatus.lease_until < until))
            )
            .execute()
        )
        if not recorded:
            return None
    elif not _source(instance_id).exists():
        return None
    return Grant(until=until, resume=not _set_operation_open(instance_id))


def _source(instance_id: str) -> Any:
    """The instance, if it is a source with replicas that is not being failed over."""
    replica = Instance.alias()
    return Instance.select(Instance.id).where(
        (Instance.id == instance_id)
        & Instance.replica_of_id.is_null()
        & (Instance.status != status.EJECT)
        & fn.EXISTS(replica.select(replica.id).where(replica.replica_of_id == Instance.id))
    )


def release(instance_id: str, leases: bool = True) -> bool | None:
    """An instance that needs no lease (not a source with replicas: they were deleted or
    detached, or it was failed over; or `leases` are turned off) is released: its lease is
    forgotten in the store. Returns whether a fence its lease's lapse made may be undone (it
    stands alone, or is a source, and no operation moves its set); None for a source with
    replicas while leases are on, which is never released."""
    instance = Instance.get_or_none(Instance.id == instance_id)
    if instance is None:
        return None
    source = not instance.replica_of_id and replication_sets.has_replicas(instance_id)
    if source and leases:
        return None
    ServiceStatus.update(lease_until=None).where(ServiceStatus.instance == instance_id).execute()
    if instance.replica_of_id:
        return False
    return not (_set_operation_open(instance_id) if source else tasks.is_busy(instance_id))


def _set_operation_open(source_id: str) -> bool:
    members = [source_id] + [r.id for r in replication_sets.replicas_of(source_id)]
    return bool(
        Task.select()
        .where(
            Task.instance_id.in_(members)
            & Task.state.in_(tasks.OPEN)
            & Task.action.in_(list(replication_sets.SET_OPERATIONS))
        )
        .exists()
    )


def lease_end(instance_id: str) -> float | None:
    """Until when the instance's last lease runs; None if it was never granted one."""
    end: float | None = (
        ServiceStatus.select(ServiceStatus.lease_until)
        .where(ServiceStatus.instance == instance_id)
        .scalar()
    )
    return end
