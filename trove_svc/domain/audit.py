"""The audit trail: what each task's Ansible run did, read back from its artifacts.

Tasks that handle secrets are `no_log`, so Ansible never writes them; on top of that,
everything shown here passes through `redact`, in case a module echoes one anyway.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trove_svc.domain import errors, tasks
from trove_svc.domain.wire_time import iso
from trove_svc.process.settings import Settings
from trove_svc.store.models import Task
from trove_wire.envelope import Context

_SECRET_ASSIGNMENT = re.compile(
    r"(?i)((?:password|passwd|secret|token|credential)[\w-]*[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
)
_URL_CREDENTIALS = re.compile(r"(\w+://[^:/\s@]+:)[^@\s]+@")
# As SQL writes them, in a datastore's statement log: PASSWORD 'x', IDENTIFIED BY 'x'.
_SQL_PASSWORD = re.compile(r"(?i)((?:\bPASSWORD|\bIDENTIFIED\s+BY)\s*\(?\s*)'(?:[^']|'')*'")


def redact(text: str) -> str:
    text = _SQL_PASSWORD.sub(r"\1'********'", text)
    text = _SECRET_ASSIGNMENT.sub(r"\1********", text)
    return _URL_CREDENTIALS.sub(r"\1********@", text)


@dataclass(frozen=True)
class Step:
    role: str
    task: str
    outcome: str  # ok, changed, failed, ignored, skipped, unreachable
    duration: float | None
    message: str | None = None


_OUTCOMES = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}


def _step(event: dict[str, Any]) -> Step:
    data = event.get("event_data") or {}
    res = data.get("res") or {}
    outcome = _OUTCOMES[event["event"]]
    if outcome == "ok" and res.get("changed"):
        outcome = "changed"
    if outcome == "failed" and data.get("ignore_errors"):
        outcome = "ignored"
    message = None
    if outcome in ("failed", "ignored", "unreachable"):
        raw = res.get("msg") or res.get("stderr") or res.get("reason") or ""
        message = redact(str(raw))[:2000] or None
    duration = data.get("duration")
    return Step(
        role=str(data.get("role") or ""),
        task=redact(str(data.get("task") or "")),
        outcome=outcome,
        duration=round(float(duration), 3) if duration is not None else None,
        message=message,
    )


def steps(artifact_dir: str | None) -> list[Step]:
    """The run's tasks in order, one entry per task and host, from its job events."""
    if not artifact_dir:
        return []
    events_dir = Path(artifact_dir) / "job_events"
    if not events_dir.is_dir():
        return []
    events = []
    for path in events_dir.glob("*.json"):
        try:
            events.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    events.sort(key=lambda e: e.get("counter", 0))
    return [_step(e) for e in events if e.get("event") in _OUTCOMES]


def task_view(task: Task) -> dict[str, Any]:
    duration = None
    if task.started_at is not None and task.finished_at is not None:
        duration = round(task.finished_at - task.started_at, 3)
    return {
        "id": task.id,
        "action": task.action,
        "state": task.state,
        "requested_by": task.requested_by,
        # The project of the token that asked: not the instance's when an admin acted on it.
        "requested_by_project": task.requested_by_project or None,
        "request_id": task.request_id,
        "playbook": task.playbook,
        "created": iso(task.created_at),
        "started": iso(task.started_at),
        "finished": iso(task.finished_at),
        "duration": duration,
        "rc": task.rc,
        # Ansible runs: more than one after a takeover or a retry (a port found busy).
        "runs": task.runs,
        # The step of its flow the task is at, or ended at.
        "current_step": task.current_step,
        "failed_step": task.failed_step,
        "message": redact(task.message) if task.message else None,
    }


def task_detail(task: Task) -> dict[str, Any]:
    return {**task_view(task), "steps": [asdict(s) for s in steps(task.artifact_dir)]}


@contextlib.contextmanager
def recorded(
    settings: Settings,
    instance_id: str,
    project_id: str,
    context: Context,
    action: str,
    summary: str,
) -> Iterator[None]:
    """Put what the block does in the instance's audit trail, with its outcome."""
    started = settings.clock()
    try:
        yield
    except Exception as exc:
        # An unexpected failure is recorded too, by its kind only (its text may hold
        # anything); the API answers it as it answers any.
        why = exc.message if isinstance(exc, errors.TroveSvcError) else type(exc).__name__
        tasks.record_done(
            settings.new_id(),
            instance_id,
            project_id,
            action,
            context.user,
            context.request_id,
            started,
            settings.clock(),
            False,
            f"{summary}: {why}",
            requested_by_project=context.project,
        )
        raise
    tasks.record_done(
        settings.new_id(),
        instance_id,
        project_id,
        action,
        context.user,
        context.request_id,
        started,
        settings.clock(),
        True,
        summary,
        requested_by_project=context.project,
    )


def task_views(instance_id: str) -> list[dict[str, Any]]:
    """The instance's tasks, oldest first."""
    query = Task.select().where(Task.instance_id == instance_id).order_by(Task.created_at, Task.id)
    return [task_view(task) for task in query]


def task_detail_of(instance_id: str, task_id: str) -> dict[str, Any]:
    task = Task.get_or_none((Task.id == task_id) & (Task.instance_id == instance_id))
    if task is None:
        raise errors.NotFound(f"Task {task_id} could not be found.")
    return task_detail(task)
