"""Limits on every waiting state: nothing waits forever.

An instance that stays BUILD, REBOOT, RESIZE or SHUTDOWN (deleting) past its limit, or a
task that no task manager picks up in time, ends in ERROR with a fault that names the
state and the limit. One that stays BACKUP goes back to ACTIVE, its backup FAILED. Any
run still going for it loses its claim and stops. The owner can then delete the instance
(or restart it, if it was built).
"""

from __future__ import annotations

import logging

from trove_svc.domain import backups, status, tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.process.settings import Settings
from trove_svc.store.models import database_proxy

LOG = logging.getLogger(__name__)


def limits(settings: Settings) -> dict[str, float]:
    return {
        status.BUILD: settings.limit_build,
        status.REBOOT: settings.limit_reboot,
        status.RESIZE: settings.limit_resize,
        status.SHUTDOWN: settings.limit_shutdown,
        status.PROMOTE: settings.limit_replication,
        status.EJECT: settings.limit_replication,
        status.DETACH: settings.limit_replication,
        status.REJOIN: settings.limit_replication,
        # The backup's own flow gives up first; this is for a task manager that died
        # meanwhile: the backup FAILED, the instance ACTIVE again (not ERROR).
        status.BACKUP: settings.limit_backup + settings.cleanup_timeout,
    }


def _limit_name(waiting: str) -> str:
    replication = (status.PROMOTE, status.EJECT, status.DETACH, status.REJOIN)
    return "REPLICATION" if waiting in replication else waiting


def give_up(instance_id: str, now: float, message: str, waiting: str | None = None) -> None:
    with database_proxy.atomic():
        if not status.record_fault(
            instance_id, now, message, only_from=(waiting,) if waiting else None
        ):
            return
        tasks.end_open(instance_id, now, TaskState.FAILED, message)
        backups.settle_left_behind(instance_id, now, message)
    LOG.warning("instance %s: %s", instance_id, message)


def sweep(settings: Settings) -> int:
    """End every wait that ran past its limit; returns how many instances it ended."""
    now = settings.clock()
    ended = 0
    for instance_id, waiting, limit in status.overdue(now, limits(settings)):
        message = (
            f"The instance stayed {waiting} for more than {limit:g} s "
            f"(TROVE_SVC_LIMIT_{_limit_name(waiting)}); trove-svc gave up waiting."
        )
        if waiting == status.BACKUP:
            if backups.abandon(instance_id, now, message):
                LOG.warning("instance %s: %s", instance_id, message)
        else:
            give_up(instance_id, now, message, waiting)
        ended += 1
    for task in tasks.stale_queued(now - settings.limit_queued):
        give_up(
            task.instance_id,
            now,
            f"No task manager took the {task.action} task within {settings.limit_queued:g} s "
            "(TROVE_SVC_LIMIT_QUEUED); trove-svc gave up waiting.",
        )
        ended += 1
    return ended
