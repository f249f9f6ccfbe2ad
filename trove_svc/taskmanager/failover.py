"""Failover that needs no one awake: the task manager looks every second for sources whose
datastore failed, or whose guest fell silent, for longer than `failover_after` (while a
replica of theirs is heard), and fails each over as if its owner had asked (an `eject`
task, in the source's audit trail, requested by trove-svc itself). With `auto_rejoin`, a
failed-over source whose guest reports again rejoins its set the same way (a `rejoin`
task)."""

from __future__ import annotations

import logging

from trove_svc.bus.messages import TaskManagerClient
from trove_svc.domain import replication_sets, status, tasks
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.store.models import Instance
from trove_wire.envelope import Context

LOG = logging.getLogger(__name__)

REQUESTED_BY = "trove-svc (automatic failover)"
REJOINED_BY = "trove-svc (automatic rejoin)"
# A source's backups, restore checks and prunes change no one's role in the set, and a
# schedule runs them often and long: a source that dies during one is failed over all the
# same (the backup then fails, its guest being silent).
BESIDE_FAILOVER = ("backup", "verify_backup", "delete_backup")
# How often the task manager looks.
INTERVAL = 1.0


def _start(
    settings: Settings, taskmanager: TaskManagerClient, source: Instance, now: float
) -> str | None:
    """Start the eject task and move the source to EJECT; None if another task manager
    (or a request) got there first, or the set is busy (a switchover stops its source on
    purpose; a replica still being built has nothing to offer)."""
    if any(tasks.is_busy(m, ignoring=BESIDE_FAILOVER) for m in replication_sets.members(source)):
        return None
    return _start_moving(
        settings, taskmanager, source, now, status.EJECT, "eject", REQUESTED_BY, automatic=True
    )


def _start_rejoin(
    settings: Settings, taskmanager: TaskManagerClient, instance: Instance, now: float
) -> str | None:
    """Start the rejoin task and move the instance to REJOIN; None if it is busy or moved."""
    if tasks.is_busy(instance.id):
        return None
    return _start_moving(settings, taskmanager, instance, now, status.REJOIN, "rejoin", REJOINED_BY)


def _start_moving(
    settings: Settings,
    taskmanager: TaskManagerClient,
    instance: Instance,
    now: float,
    to_status: str,
    action: str,
    requested_by: str,
    **args: object,
) -> str | None:
    """Start `action` as trove-svc (`requested_by`), in the instance's own project, with
    the instance moved to `to_status`; None if something else moved it first. If the bus
    cannot take the cast, the instance's status is put back as it was."""
    task_id = settings.new_id()
    caller = Caller(instance.project_id, Context(project=instance.project_id, user=requested_by))

    def move_back() -> None:
        Instance.update(status=instance.status, status_since=instance.status_since).where(
            Instance.id == instance.id
        ).execute()

    with tasks.starting(taskmanager, caller, now, undo=move_back) as start:
        if not status.move(instance.id, instance.status, to_status, now):
            return None
        start.task(task_id, instance.id, action, args=args or None)
    return task_id


def start_rejoins(settings: Settings, taskmanager: TaskManagerClient) -> list[str]:
    """The rejoin tasks started for failed-over sources that report again."""
    if not settings.auto_rejoin:
        return []
    now = settings.clock()
    started = []
    for instance in replication_sets.awaiting_rejoin():
        task_id = _start_rejoin(settings, taskmanager, instance, now)
        if task_id is not None:
            LOG.warning(
                "failed-over source %s reports again: it rejoins as a replica of %s (task %s)",
                instance.id,
                instance.replica_of_id,
                task_id,
            )
            started.append(task_id)
    return started


def start_due(settings: Settings, taskmanager: TaskManagerClient) -> list[str]:
    """The eject tasks started for sources that failed (cast, as a request's are)."""
    if not settings.failover_after:
        return []
    now = settings.clock()
    started = []
    for source in replication_sets.failed_sources(now, settings.failover_after):
        task_id = _start(settings, taskmanager, source, now)
        if task_id is not None:
            LOG.warning(
                "instance %s not healthy for over %g s: failing it over (task %s)",
                source.id,
                settings.failover_after,
                task_id,
            )
            started.append(task_id)
    return started
