"""Failover that needs no one awake: the task manager looks every second for sources whose
datastore failed, or whose guest fell silent, for longer than `failover_after` (while a
replica of theirs is heard), and fails each over as if its owner had asked (an `eject`
task, in the source's audit trail, requested by trove-svc itself)."""

from __future__ import annotations

import logging

from trove_svc import replication, status, tasks
from trove_svc.settings import Settings
from trove_svc.store.models import Instance, database_proxy

LOG = logging.getLogger(__name__)

REQUESTED_BY = "trove-svc (automatic failover)"
# A source's backups, restore checks and prunes change no one's role in the set, and a
# schedule runs them often and long: a source that dies during one is failed over all the
# same (the backup then fails, its guest being silent).
BESIDE_FAILOVER = ("backup", "verify_backup", "delete_backup")
# How often the task manager looks.
INTERVAL = 1.0


def _start(settings: Settings, source: Instance, now: float) -> str | None:
    """Record the eject task and move the source to EJECT; None if another task manager
    (or a request) got there first, or the set is busy (a switchover stops its source on
    purpose; a replica still being built has nothing to offer)."""
    if any(tasks.is_busy(m, ignoring=BESIDE_FAILOVER) for m in replication.members(source)):
        return None
    task_id = settings.new_id()
    with database_proxy.atomic():
        if not status.move(source.id, source.status, status.EJECT, now):
            return None
        tasks.record(
            task_id,
            source.id,
            source.project_id,
            "eject",
            REQUESTED_BY,
            "",
            now,
            args={"automatic": True},
        )
    return task_id


def start_due(settings: Settings) -> list[str]:
    """The eject tasks started for sources that failed; the caller runs them."""
    if not settings.failover_after:
        return []
    now = settings.clock()
    started = []
    for source in replication.failed_sources(now, settings.failover_after):
        task_id = _start(settings, source, now)
        if task_id is not None:
            LOG.warning(
                "instance %s not healthy for over %g s: failing it over (task %s)",
                source.id,
                settings.failover_after,
                task_id,
            )
            started.append(task_id)
    return started
