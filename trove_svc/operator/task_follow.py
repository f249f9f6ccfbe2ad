"""`trove-svc task watch`: follow an instance's running task step by step.

Each Ansible step is read from the run's own job events as ansible-runner writes them, so
no step is missed however fast they go. On a terminal it draws a progress bar (the number
of steps is the last successful run's of the same action); otherwise it prints one line
per step. It ends with the task's outcome, and so does its exit status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from trove_svc.domain.tasks import OPEN, TaskState
from trove_svc.store.models import Task

_BAR = 30


def _step_names(events_dir: Path) -> list[str]:
    """The steps a run has started so far, in order."""
    found = []
    for path in events_dir.glob("*.json"):
        try:
            event = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # written as we read: the next look has it
        if event.get("event") == "playbook_on_task_start":
            data = event.get("event_data") or {}
            role = str(data.get("role") or "")
            task = str(data.get("task") or "")
            found.append((int(event.get("counter", 0)), f"{role} : {task}" if role else task))
    return [name for _, name in sorted(found)]


def _run_steps(runs_dir: Path, task_id: str) -> list[str]:
    """Steps of every run of the task (a takeover or retry runs again), oldest run first."""
    steps: list[str] = []
    for run in sorted(runs_dir.glob(f"{task_id}*"), key=lambda p: p.stat().st_mtime):
        for events in run.glob("artifacts/*/job_events"):
            steps += _step_names(events)
    return steps


def _expected(runs_dir: Path, action: str, task_id: str) -> int | None:
    """How many steps the last successful run of the same action took."""
    done = (
        Task.select(Task.id)
        .where((Task.action == action) & (Task.state == TaskState.SUCCEEDED) & (Task.id != task_id))
        .order_by(Task.finished_at.desc())
        .first()
    )
    if done is None:
        return None
    count = len(_run_steps(runs_dir, done.id))
    return count or None


def _task_to_follow(instance_id: str) -> Task | None:
    open_task = (
        Task.select()
        .where((Task.instance_id == instance_id) & Task.state.in_(OPEN))
        .order_by(Task.created_at.desc())
        .first()
    )
    if open_task is not None:
        return open_task
    return (
        Task.select()
        .where(Task.instance_id == instance_id)
        .order_by(Task.created_at.desc())
        .first()
    )


def _bar(done: int, expected: int | None, step: str) -> str:
    if expected:
        filled = min(_BAR, done * _BAR // expected)
        gauge = f"[{'#' * filled}{'.' * (_BAR - filled)}] {min(done, expected)}/{expected}"
    else:
        gauge = f"[step {done}]"
    return f"\r{gauge} {step[:60]:60}"


def follow(
    instance_id: str,
    runs_dir: Path,
    out: TextIO,
    on_terminal: bool,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Follow the instance's task until it ends; 0 if it succeeded, 1 if not, 2 if there is
    no task, 3 if it outlasted `timeout`."""
    task = _task_to_follow(instance_id)
    if task is None:
        out.write(f"no task for instance {instance_id}\n")
        return 2
    expected = _expected(runs_dir, task.action, task.id)
    out.write(f"{task.action} task {task.id} ({task.state})\n")
    shown = 0
    deadline = time.monotonic() + timeout
    while True:
        task = Task.get_by_id(task.id)
        steps = _run_steps(runs_dir, task.id)
        for number, step in enumerate(steps[shown:], start=shown + 1):
            if on_terminal:
                out.write(_bar(number, expected, step))
            else:
                out.write(f"step {number}{f'/{expected}' if expected else ''}: {step}\n")
        shown = max(shown, len(steps))
        out.flush()
        if task.state not in OPEN:
            break
        if time.monotonic() > deadline:
            out.write(f"\nstill {task.state} after {timeout:g} s\n")
            return 3
        sleep(0.3)
    if on_terminal:
        out.write("\n")
    detail = f": {task.message}" if task.message and task.state != TaskState.SUCCEEDED else ""
    out.write(f"{task.action} {task.state}{detail}\n")
    return 0 if task.state == TaskState.SUCCEEDED else 1
