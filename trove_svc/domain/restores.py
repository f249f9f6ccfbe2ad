"""Restores: which backup a create restores from, and to what time. A time must fall in
what the backups and the archived logs cover; any other is refused with the range there is."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from trove_svc.domain import errors
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.store.models import Backup, Instance
from trove_wire import datastores

COMPLETED = "COMPLETED"


def parse_time(text: str) -> float:
    """Epoch seconds from an ISO 8601 time (UTC when it names no zone)."""
    cleaned = text.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise errors.BadRequest(
            "restore_time must be an ISO 8601 time, such as 2026-11-26T21:41:30."
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso_utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def restore_range(backup: Backup, logs_until: float | None) -> tuple[float, float]:
    """The times a restore from `backup`'s instance can reach: from this backup's
    consistent point to what the archived logs cover (`logs_until`), or to the backup's
    own point when no logs go further."""
    start = float(backup.consistent_at or backup.updated_at)
    return start, max(start, logs_until or start)


def restore_source(
    settings: Settings, caller: Caller, point: dict[str, Any]
) -> tuple[Backup, float | None]:
    """The backup a create restores from (the caller's, completed), and the time to replay
    to, if any, checked against what the backups and archived logs cover."""
    backup_id = str(point["backupRef"]).rstrip("/").rsplit("/", 1)[-1]
    backup = Backup.get_or_none(
        (Backup.id == backup_id)
        & (Backup.project_id == caller.project_id)
        & Backup.tenant_visible()
    )
    if backup is None:
        raise errors.NotFound(f"Backup {backup_id} could not be found.")
    if backup.state != COMPLETED:
        raise errors.Conflict(f"Backup {backup.id} is {backup.state}, not COMPLETED.")
    if "restore_time" not in point:
        return backup, None
    if not datastores.get(backup.datastore).capabilities.point_in_time:
        raise errors.BadRequest(f"Restores to a time are not supported for {backup.datastore}.")
    wanted = parse_time(str(point["restore_time"]))
    source = Instance.get_or_none(Instance.id == backup.instance_id)
    # A living source archives its logs up to now when the restore starts.
    logs_until = settings.clock() if source is not None else backup.details.get("logs_until")
    start, end = restore_range(backup, logs_until)
    if not start <= wanted <= end:
        raise errors.BadRequest(
            f"restore_time {iso_utc(wanted)} is outside what backup {backup.id} and the "
            f"archived logs cover: {iso_utc(start)} to {iso_utc(end)} (UTC)."
        )
    return backup, wanted
