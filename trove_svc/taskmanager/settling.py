"""An instance a task ended on turns ACTIVE once its guest says it is healthy.

Called when a flow that waits on the guest's word (a create, a restart, a change, a
promotion) has ended well. The conductor promotes it on a healthy heartbeat too, whichever
comes first (`status.promote_if_ready`).
"""

from __future__ import annotations

import logging

from trove_svc.domain import errors, status
from trove_svc.taskmanager.deps import FlowDeps
from trove_wire import contract

LOG = logging.getLogger(__name__)


def settle(deps: FlowDeps, instance_id: str) -> None:
    """ACTIVE now if the guest's last word was HEALTHY (and nothing else is open on the
    instance); else its guest is asked for a heartbeat now, not at its next interval (a
    restart's last one may have found the datastore down). An ask the bus does not take
    only leaves the instance to that next heartbeat."""
    if status.promote_if_ready(instance_id, deps.settings.clock()):
        return
    try:
        deps.bus.cast_guest(instance_id, contract.ReportNow(), ttl=deps.settings.heartbeat_interval)
    except errors.ServiceUnavailable as exc:
        LOG.debug("no heartbeat asked of the guest of %s: %s", instance_id, exc.message)
