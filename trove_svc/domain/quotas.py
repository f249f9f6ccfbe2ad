"""Per-project quotas with Trove's defaults, and how much of them is in use."""

from __future__ import annotations

from dataclasses import dataclass

import peewee

from trove_svc.domain import errors
from trove_svc.process.settings import Settings
from trove_svc.store.models import Backup, Instance


@dataclass(frozen=True)
class Usage:
    instances: int
    volume_gb: int
    backups: int


def usage(project_id: str) -> Usage:
    """What the project holds. Every backup it has counts, whatever its state (a FAILED
    one too, until it is deleted); a backup that outlived its instance counts as well.
    One its tenant deleted does not, even while its tool keeps its data."""
    row = (
        Instance.select(
            peewee.fn.COUNT(Instance.id), peewee.fn.COALESCE(peewee.fn.SUM(Instance.volume_size), 0)
        )
        .where(Instance.project_id == project_id)
        .tuples()
        .first()
    )
    backups = (
        Backup.select().where((Backup.project_id == project_id) & Backup.tenant_visible()).count()
    )
    return Usage(instances=int(row[0]), volume_gb=int(row[1]), backups=int(backups))


def check(
    settings: Settings,
    project_id: str,
    new_instances: int,
    new_volume_gb: int,
    new_backups: int = 0,
) -> None:
    """Raise OverLimit naming every resource the request would take past its quota."""
    used = usage(project_id)
    over = []
    if new_instances and used.instances + new_instances > settings.quota_instances:
        over.append("instances")
    if new_volume_gb and used.volume_gb + new_volume_gb > settings.quota_volume_gb:
        over.append("volumes")
    if new_backups and used.backups + new_backups > settings.quota_backups:
        over.append("backups")
    if over:
        raise errors.OverLimit(f"Quota exceeded for resources: {over}.")


def limits(settings: Settings, project_id: str) -> list[dict[str, object]]:
    used = usage(project_id)
    return [
        {
            "verb": "ABSOLUTE",
            "max_instances": settings.quota_instances,
            "max_volumes": settings.quota_volume_gb,
            "max_backups": settings.quota_backups,
            "used_instances": used.instances,
            "used_volumes": used.volume_gb,
            "used_backups": used.backups,
        }
    ]
