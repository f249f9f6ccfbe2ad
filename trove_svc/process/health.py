"""The health check load balancers ask, on each node: does the store answer, does the
broker (and which of its nodes this node reaches), and how many task managers and
conductors, on any node, were seen lately? Each part missing is named."""

from __future__ import annotations

from typing import Any

import peewee

from trove_svc.bus.client import Bus
from trove_svc.domain import errors
from trove_svc.process import workers
from trove_svc.process.settings import Settings
from trove_svc.store.models import Worker

WORKER_KINDS = (workers.TASKMANAGER, workers.CONDUCTOR)


def _store() -> str | None:
    try:
        Worker.select(Worker.id).limit(1).execute()
    except peewee.DatabaseError:
        return "the store does not answer"
    return None


def _broker(bus: Bus) -> tuple[str | None, str | None]:
    """(problem, the broker node reached)."""
    try:
        return None, bus.check()
    except errors.ServiceUnavailable:
        return "RabbitMQ does not answer", None


def check(settings: Settings, bus: Bus) -> tuple[bool, dict[str, Any]]:
    """(healthy, report): the report names each part and what is wrong with it, and says
    what this node sees (the store's engine, the broker node it reaches, the workers of
    every node seen lately)."""
    broker_problem, broker_node = _broker(bus)
    problems: dict[str, str | None] = {"store": _store(), "broker": broker_problem}
    since = settings.clock() - settings.worker_seen_within
    seen: dict[str, int | None] = {}
    for kind in WORKER_KINDS:
        seen[kind] = None if problems["store"] else workers.seen_since(kind, since)
        if seen[kind] is None:
            problems[kind] = "unknown: the store does not answer"
        elif not seen[kind]:
            problems[kind] = f"none seen in the last {settings.worker_seen_within:g} s"
        else:
            problems[kind] = None
    missing = [part for part, problem in problems.items() if problem]
    report = {
        "status": "unavailable" if missing else "ok",
        "missing": missing,
        "checks": {part: problem or "ok" for part, problem in problems.items()},
        "sees": {
            "store": settings.effective_database_url.partition(":")[0],
            "broker_node": broker_node,
            **{f"{kind}s": count for kind, count in seen.items()},
        },
    }
    return not missing, report
