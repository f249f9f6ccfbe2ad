"""Instance status: the values Trove clients know, every move between them, and the rules
for becoming ACTIVE, for showing a silent guest, and for giving up on a wait."""

from __future__ import annotations

from typing import Any

import peewee

from trove_svc.domain import errors
from trove_svc.domain.tasks import OPEN
from trove_svc.store.models import Instance, ServiceStatus, Task

BUILD = "BUILD"
ACTIVE = "ACTIVE"
ERROR = "ERROR"
SHUTDOWN = "SHUTDOWN"  # being deleted
REBOOT = "REBOOT"
RESIZE = "RESIZE"
BACKUP = "BACKUP"
# Replication (Trove's names): a replica being promoted, a source being ejected (failed
# over), a replica being detached; and (trove-svc's) a failed-over source rejoining its set.
PROMOTE = "PROMOTE"
EJECT = "EJECT"
DETACH = "DETACH"
REJOIN = "REJOIN"
# (trove-svc's) Built ahead of demand, waiting in a warm pool for a create to claim it
# (trove_svc.domain.warm_pool); no tenant's, so no tenant ever sees it.
WARM = "WARM"

# Shown, never stored: ACTIVE with configuration values waiting for a restart.
RESTART_REQUIRED = "RESTART_REQUIRED"

HEALTHY = "HEALTHY"
NEW = "NEW"

# Statuses a task holds while its playbook runs; a healthy guest after it ends means ACTIVE.
SETTLES_TO_ACTIVE = (BUILD, REBOOT, RESIZE, PROMOTE, EJECT, DETACH, REJOIN)
# Statuses that wait on something; each has a time limit (settings `limit_<status>`, and
# `limit_replication` for the replication ones).
WAITING = (BUILD, REBOOT, RESIZE, SHUTDOWN, BACKUP, PROMOTE, EJECT, DETACH, REJOIN)

# Every move of `status` an operation may make (the flows' endings are the ACTIVE and ERROR
# entries). A delete may start from anywhere. Anything else is refused with 409.
TRANSITIONS: dict[str, frozenset[str]] = {
    BUILD: frozenset({ACTIVE, ERROR, SHUTDOWN, WARM}),
    # A claim makes it a tenant's instance being built.
    WARM: frozenset({BUILD, SHUTDOWN}),
    ACTIVE: frozenset({REBOOT, RESIZE, SHUTDOWN, ERROR, BACKUP, PROMOTE, EJECT, DETACH, REJOIN}),
    BACKUP: frozenset({ACTIVE, ERROR, SHUTDOWN, EJECT}),
    REBOOT: frozenset({ACTIVE, ERROR, SHUTDOWN}),
    RESIZE: frozenset({ACTIVE, ERROR, SHUTDOWN}),
    PROMOTE: frozenset({ACTIVE, ERROR, SHUTDOWN}),
    # A failed-over source whose guest answers while its datastore does not rejoins too.
    EJECT: frozenset({ACTIVE, ERROR, SHUTDOWN, REJOIN}),
    DETACH: frozenset({ACTIVE, ERROR, SHUTDOWN}),
    REJOIN: frozenset({ACTIVE, ERROR, SHUTDOWN}),
    # A source whose instance failed can still be failed over.
    ERROR: frozenset({REBOOT, SHUTDOWN, ERROR, EJECT, REJOIN}),
    SHUTDOWN: frozenset({ERROR, SHUTDOWN}),
}


def record_new(now: float, **columns: Any) -> Instance:
    """A new instance's records: the instance in BUILD (its `columns`: place, owner,
    datastore, ...), and its guest's status NEW until its first report."""
    instance = Instance.create(
        **columns, status=BUILD, status_since=now, created_at=now, updated_at=now
    )
    ServiceStatus.create(instance=instance, operating_status=NEW)
    return instance


def require_transition(instance_id: str, current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise errors.Conflict(
            f"Instance {instance_id} is {current}; that operation needs it in another state."
        )


def require_active(instance_id: str, current: str) -> None:
    """The one rule for operations on a running instance, and its one answer (409)."""
    if current != ACTIVE:
        raise errors.Conflict(f"Instance {instance_id} is {current}; this needs it ACTIVE.")


def move(instance_id: str, current: str, target: str, now: float) -> bool:
    """Compare-and-set the status; False if it changed meanwhile."""
    moved: int = (
        Instance.update(status=target, status_since=now, updated_at=now)
        .where((Instance.id == instance_id) & (Instance.status == current))
        .execute()
    )
    return moved == 1


def record_fault(
    instance_id: str,
    now: float,
    message: str,
    details: str | None = None,
    only_from: tuple[str, ...] | None = None,
) -> bool:
    """The instance goes to ERROR with a fault a user can act on; with `only_from`, only
    if its status is still one of those (a delete asked for meanwhile wins)."""
    condition = Instance.id == instance_id
    if only_from is not None:
        condition &= Instance.status.in_(only_from)
    updated: int = (
        Instance.update(
            status=ERROR,
            status_since=now,
            current_step=None,
            updated_at=now,
            fault_at=now,
            fault_message=message,
            fault_details=details,
        )
        .where(condition)
        .execute()
    )
    return updated == 1


def promote_if_ready(instance_id: str, now: float) -> bool:
    """BUILD, REBOOT or RESIZE turns ACTIVE once the instance was built, no task of it is
    open (its playbook finished) and the guest is HEALTHY.

    Called by both the task manager (playbook done) and the conductor (heartbeat), in
    whichever order they come; the conditional update makes it safe to call twice.
    """
    healthy = ServiceStatus.select().where(
        (ServiceStatus.instance == instance_id) & (ServiceStatus.operating_status == HEALTHY)
    )
    working = Task.select().where((Task.instance_id == instance_id) & Task.state.in_(OPEN))
    updated: int = (
        Instance.update(status=ACTIVE, status_since=now, current_step=None)
        .where(
            (Instance.id == instance_id)
            & Instance.status.in_(SETTLES_TO_ACTIVE)
            & Instance.provisioned
            & peewee.fn.EXISTS(healthy)
            & ~peewee.fn.EXISTS(working)
        )
        .execute()
    )
    return updated == 1


def expire_silent_guests(now: float, expiry: float) -> int:
    """Guests silent for longer than `expiry` say nothing more: their datastore is SHUTDOWN.

    Only instances that should be running are touched; the next heartbeat sets the real
    status again. Returns how many were marked.
    """
    running = Instance.select(Instance.id).where(
        Instance.status.not_in((BUILD, SHUTDOWN)) & Instance.provisioned
    )
    marked: int = (
        ServiceStatus.update(
            operating_status=SHUTDOWN,
            message=f"No heartbeat from the guest agent for over {expiry:g} s.",
        )
        .where(
            ServiceStatus.instance.in_(running)
            & (ServiceStatus.last_received_at < now - expiry)
            & (ServiceStatus.operating_status != SHUTDOWN)
        )
        .execute()
    )
    return marked


def overdue(now: float, limits: dict[str, float]) -> list[tuple[str, str, float]]:
    """Instances waiting in a status for longer than its limit: (id, status, limit)."""
    found = []
    for waiting, limit in limits.items():
        rows = Instance.select(Instance.id).where(
            (Instance.status == waiting) & (Instance.status_since < now - limit)
        )
        found += [(row.id, waiting, limit) for row in rows]
    return found


def shown(stored: str, restart_pending: bool) -> str:
    """The status a client sees: RESTART_REQUIRED stands for ACTIVE while values of the
    configuration group wait for a restart (operations treat it as ACTIVE)."""
    return RESTART_REQUIRED if stored == ACTIVE and restart_pending else stored
