"""The health check load balancers ask: does the store answer, does the broker, and were a
task manager and a conductor seen lately? Each part missing is named."""

from __future__ import annotations

from typing import Any

import peewee

from trove_svc.bus.client import Bus
from trove_svc.domain import errors
from trove_svc.process import workers
from trove_svc.process.settings import Settings
from trove_svc.store.models import Worker


def _store() -> str | None:
    try:
        Worker.select(Worker.id).limit(1).execute()
    except peewee.DatabaseError:
        return "the store does not answer"
    return None


def _broker(bus: Bus) -> str | None:
    try:
        bus.check()
    except errors.ServiceUnavailable:
        return "RabbitMQ does not answer"
    return None


def check(settings: Settings, bus: Bus) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): the report names each part and what is wrong with it."""
    problems: dict[str, str | None] = {"store": _store(), "broker": _broker(bus)}
    since = settings.clock() - settings.worker_seen_within
    for kind in (workers.TASKMANAGER, workers.CONDUCTOR):
        if problems["store"] is not None:
            problems[kind] = "unknown: the store does not answer"
        elif not workers.recently_seen(kind, since):
            problems[kind] = f"none seen in the last {settings.worker_seen_within:g} s"
        else:
            problems[kind] = None
    missing = [part for part, problem in problems.items() if problem]
    report = {
        "status": "unavailable" if missing else "ok",
        "missing": missing,
        "checks": {part: problem or "ok" for part, problem in problems.items()},
    }
    return not missing, report
