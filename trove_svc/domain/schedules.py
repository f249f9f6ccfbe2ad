"""Backup schedules (beyond Trove): cron syntax, retention by count and by age, and an
optional restore check of each new backup. The task manager runs them (`due`, `claim`)."""

from __future__ import annotations

import uuid
from typing import Any

from croniter import CroniterBadCronError, croniter

from trove_svc.domain import audit, errors
from trove_svc.domain.backups import chain, newest_completed
from trove_svc.domain.instances import InstanceService
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.store.models import Backup, Schedule
from trove_wire import datastores


def next_run(cron: str, after: float) -> float:
    try:
        return float(croniter(cron, after).get_next(float))
    except (CroniterBadCronError, ValueError, KeyError) as exc:
        raise errors.BadRequest(
            f"cron {cron[:64]!r} is not cron syntax (minute hour day month weekday)."
        ) from exc


class ScheduleService:
    def __init__(self, settings: Settings, instances: InstanceService) -> None:
        self._settings = settings
        self._instances = instances

    def create(self, caller: Caller, instance_id: str, body: dict[str, Any]) -> Schedule:
        spec = body["schedule"]
        instance, _ = self._instances.get(caller, instance_id)
        capabilities = datastores.get(instance.datastore_version.datastore.name).capabilities
        if not capabilities.backups:
            raise errors.BadRequest("Backups are not supported for this datastore.")
        if spec.get("incremental") and not capabilities.incremental_backups:
            raise errors.BadRequest("Incremental backups are not supported for this datastore.")
        now = self._settings.clock()
        first_run = next_run(spec["cron"], now)  # a request refused as careless records nothing
        summary = f"schedule {spec['name'][:64]!r} ({spec['cron'][:64]})"
        with self._recorded(caller, instance.id, "schedule_create", summary):
            return Schedule.create(
                id=str(uuid.uuid4()),
                instance_id=instance.id,
                project_id=caller.project_id,
                name=spec["name"],
                cron=spec["cron"],
                incremental=bool(spec.get("incremental", False)),
                retention_count=spec.get("retention_count"),
                retention_days=spec.get("retention_days"),
                verify=bool(spec.get("verify", False)),
                next_run_at=first_run,
                created_at=now,
            )

    def _recorded(self, caller: Caller, instance_id: str, action: str, summary: str) -> Any:
        return audit.recorded(
            self._settings, instance_id, caller.project_id, caller.context, action, summary
        )

    def listing(self, caller: Caller, instance_id: str) -> list[Schedule]:
        self._instances.get(caller, instance_id)
        return list(
            Schedule.select()
            .where(
                (Schedule.instance_id == instance_id) & (Schedule.project_id == caller.project_id)
            )
            .order_by(Schedule.created_at)
        )

    def delete(self, caller: Caller, instance_id: str, schedule_id: str) -> None:
        self._instances.get(caller, instance_id)
        with self._recorded(caller, instance_id, "schedule_delete", f"schedule {schedule_id}"):
            removed = (
                Schedule.delete()
                .where(
                    (Schedule.id == schedule_id)
                    & (Schedule.instance_id == instance_id)
                    & (Schedule.project_id == caller.project_id)
                )
                .execute()
            )
            if not removed:
                raise errors.NotFound(f"Schedule {schedule_id} could not be found.")


def due(now: float) -> list[Schedule]:
    return list(Schedule.select().where(Schedule.next_run_at <= now))


def claim(schedule: Schedule, now: float) -> bool:
    """Move the schedule to its next run; only one task manager wins a given run."""
    moved: int = (
        Schedule.update(next_run_at=next_run(schedule.cron, now), last_run_at=now)
        .where((Schedule.id == schedule.id) & (Schedule.next_run_at == schedule.next_run_at))
        .execute()
    )
    return moved == 1


def beyond_retention(schedule: Schedule, now: float) -> list[Backup]:
    """The schedule's completed backups its retention no longer keeps, oldest first; never
    one a kept backup builds on."""
    made = list(
        Backup.select()
        .where(
            (Backup.schedule_id == schedule.id)
            & (Backup.state == "COMPLETED")
            & Backup.tenant_visible()
        )
        .order_by(Backup.created_at.desc())
    )
    kept = made[: schedule.retention_count] if schedule.retention_count else list(made)
    if schedule.retention_days:
        kept = [b for b in kept if b.created_at >= now - schedule.retention_days * 86400]
    needed = {b.id for b in kept}
    for backup in kept:
        parent = backup.parent_id
        while parent:
            needed.add(parent)
            found = Backup.get_or_none(Backup.id == parent)
            parent = found.parent_id if found else None
    return [b for b in reversed(made) if b.id not in needed]


# An incremental schedule without a retention count starts a new chain this often.
FULL_EVERY = 7


def next_is_incremental(schedule: Schedule) -> bool:
    """Whether the schedule's next backup builds on the newest one. An incremental schedule
    starts a new chain with a full backup once the newest backup's chain holds as many
    backups as its retention keeps: else every kept backup would need the whole chain, and
    retention could never prune."""
    if not schedule.incremental:
        return False
    newest = newest_completed(schedule.instance_id)
    if newest is None:
        return True  # the first is full all the same
    return len(chain(newest)) < (schedule.retention_count or FULL_EVERY)
