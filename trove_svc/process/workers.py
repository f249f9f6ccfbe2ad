"""The control plane's processes as last seen: each task manager and conductor says it is
alive every few seconds, and the health check asks whether one of each was seen lately."""

from __future__ import annotations

import os
import socket
import uuid

from trove_svc.store.models import Worker

TASKMANAGER = "taskmanager"
CONDUCTOR = "conductor"


def new_id(kind: str) -> str:
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def seen(worker_id: str, kind: str, now: float) -> None:
    # Update, else insert: the worker's id is its process's alone, so nothing else inserts
    # it between the two (ignoring a conflict is what SQLite, PostgreSQL and MySQL all
    # support; replacing is SQLite's and MySQL's only).
    updated = Worker.update(seen_at=now).where(Worker.id == worker_id).execute()
    if not updated:
        Worker.insert(
            id=worker_id,
            kind=kind,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            started_at=now,
            seen_at=now,
        ).on_conflict_ignore().execute()


def gone(worker_id: str) -> None:
    Worker.delete().where(Worker.id == worker_id).execute()


def seen_since(kind: str, since: float) -> int:
    """How many processes of `kind`, on any node, said they were alive since `since`."""
    return int(Worker.select().where((Worker.kind == kind) & (Worker.seen_at >= since)).count())


def forget_older_than(before: float) -> int:
    removed: int = Worker.delete().where(Worker.seen_at < before).execute()
    return removed
