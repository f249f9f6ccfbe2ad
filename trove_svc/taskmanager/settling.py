"""An instance a task ended on turns ACTIVE once its guest says it is healthy.

Called when a flow that waits on the guest's word (a create, a restart, a change, a
promotion) has ended well. The conductor promotes it on a healthy heartbeat too, whichever
comes first (`status.promote_if_ready`).
"""

from __future__ import annotations

import logging

from trove_svc.domain import errors, status
from trove_svc.taskmanager.engine import FlowState
from trove_wire import contract

LOG = logging.getLogger(__name__)


def settle(state: FlowState) -> None:
    """The task's instance is ACTIVE now if its guest's last word was HEALTHY (and nothing
    else is open on it); else its guest is asked for a heartbeat now, not at its next
    interval (a restart's last one may have found the datastore down). An ask the bus does
    not take only leaves the instance to that next heartbeat."""
    deps, instance_id = state.deps, state.claim.task.instance_id
    if status.promote_if_ready(instance_id, deps.settings.clock()):
        return
    try:
        deps.bus.cast_guest(instance_id, contract.ReportNow(), ttl=deps.settings.heartbeat_interval)
    except errors.ServiceUnavailable as exc:
        LOG.debug("no heartbeat asked of the guest of %s: %s", instance_id, exc.message)
