"""Instance status: the values Trove clients know, and the one rule for becoming ACTIVE."""

from __future__ import annotations

from trove_svc import errors
from trove_svc.store.models import Instance, ServiceStatus

BUILD = "BUILD"
ACTIVE = "ACTIVE"
ERROR = "ERROR"
SHUTDOWN = "SHUTDOWN"
REBOOT = "REBOOT"
RESIZE = "RESIZE"

# Statuses a task holds while its playbook runs; a healthy guest after it ends means ACTIVE.
SETTLES_TO_ACTIVE = (BUILD, REBOOT, RESIZE)

# Every move of `status` an operation may make (the flows' endings are the ACTIVE and ERROR
# entries). Anything else is refused with 409 before any work starts.
TRANSITIONS: dict[str, frozenset[str]] = {
    BUILD: frozenset({ACTIVE, ERROR, SHUTDOWN}),
    ACTIVE: frozenset({REBOOT, RESIZE, SHUTDOWN, ERROR}),
    REBOOT: frozenset({ACTIVE, ERROR}),
    RESIZE: frozenset({ACTIVE, ERROR}),
    ERROR: frozenset({REBOOT, SHUTDOWN, ERROR}),
    SHUTDOWN: frozenset({ERROR}),
}


def record_fault(
    instance_id: str, now: float, message: str, details: str | None = None, **fields: object
) -> None:
    """The instance goes to ERROR with a fault a user can act on (and any other fields)."""
    Instance.update(
        status=ERROR,
        current_step=None,
        updated_at=now,
        fault_at=now,
        fault_message=message,
        fault_details=details,
        **fields,
    ).where(Instance.id == instance_id).execute()


def require_transition(instance_id: str, current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise errors.Conflict(
            f"Instance {instance_id} is {current}; that operation needs it in another state."
        )


HEALTHY = "HEALTHY"
NEW = "NEW"


def promote_if_ready(instance_id: str) -> bool:
    """BUILD, REBOOT or RESIZE turns ACTIVE once the playbook succeeded and the guest is HEALTHY.

    Called by both the task manager (playbook done) and the conductor (heartbeat), in
    whichever order they come; the conditional update makes it safe to call twice.
    """
    healthy = ServiceStatus.select().where(
        (ServiceStatus.instance == instance_id) & (ServiceStatus.operating_status == HEALTHY)
    )
    updated: int = (
        Instance.update(status=ACTIVE, current_step=None)
        .where(
            (Instance.id == instance_id)
            & Instance.status.in_(SETTLES_TO_ACTIVE)
            & Instance.provisioned
            & healthy.exists()
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
