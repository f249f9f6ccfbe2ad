"""A task manager's sweep of secrets files removes those of runs that are over, and only
those: a run that starts beside it (a takeover, say) keeps its file. And a task this task
manager is still running is not claimed again by it. Against a real (SQLite) store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import rows
from trove_svc.domain import catalog, tasks
from trove_svc.process.settings import Settings
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import Task
from trove_svc.taskmanager.service import TaskManager
from trove_wire import seal

NOW = 1_000_000.0
LEASE = 30.0


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[TaskManager]:
    settings = Settings(state_dir=tmp_path, taskmanager_workers=1, clock=lambda: NOW)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance()
    settings.secrets_dir.mkdir(parents=True, mode=0o700)
    deps: Any = SimpleNamespace(
        settings=settings,
        keys=ServiceKeys(seal.new_key()),
        bus=SimpleNamespace(url="amqp://nowhere:1/"),
    )
    yield TaskManager(deps)
    database.close()


def _task(task_id: str) -> Task:
    return tasks.record(task_id, "i-1", "p1", "restart", "u1", "req-1", NOW - 100)


def _secrets_file(manager: TaskManager, task_id: str) -> Path:
    path: Path = manager.deps.settings.secrets_dir / f"{task_id}.yml"
    path.write_text("{}")
    return path


def test_the_files_of_ended_and_abandoned_runs_go_and_a_live_runs_stays(
    manager: TaskManager,
) -> None:
    ended, abandoned, live = (f"{n}0000000-0000-0000-0000-000000000000" for n in "123")
    for task_id in (ended, abandoned, live):
        _task(task_id)
    tasks.claim(abandoned, "tm-gone", NOW - 60, LEASE)  # its lease ran out 30 s ago
    tasks.claim(live, "tm-alive", NOW - 1, LEASE)
    files = {task_id: _secrets_file(manager, task_id) for task_id in (ended, abandoned, live)}
    manager._remove_orphan_secrets(NOW)
    assert {task_id for task_id, path in files.items() if path.exists()} == {live}


def test_a_run_that_starts_while_the_store_is_asked_keeps_its_secrets(
    manager: TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The takeover that housekeeping itself starts claims and writes its file on another
    thread while housekeeping asks the store which runs are live."""
    over, starting = (f"{n}0000000-0000-0000-0000-000000000000" for n in "45")
    _task(over)
    _task(starting)
    over_file = _secrets_file(manager, over)
    asked = tasks.holding_leases
    started: list[Path] = []

    def run_starts_meanwhile(task_ids: set[str], now: float) -> set[str]:
        answer = asked(task_ids, now)
        tasks.claim(starting, "tm-other-thread", NOW, LEASE)
        started.append(_secrets_file(manager, starting))
        return answer

    monkeypatch.setattr(tasks, "holding_leases", run_starts_meanwhile)
    manager._remove_orphan_secrets(NOW)
    assert not over_file.exists()
    assert [path.exists() for path in started] == [True]


def test_a_task_still_running_here_is_not_claimed_again_by_this_task_manager(
    manager: TaskManager,
) -> None:
    task_id = "60000000-0000-0000-0000-000000000000"
    _task(task_id)
    assert tasks.claim(task_id, manager.worker_id, NOW - 60, LEASE)
    manager.leases.hold(task_id, NOW - 60)  # its run goes on; its lease ran out in the store
    manager.run_task(task_id, from_message=False)
    task = Task.get_by_id(task_id)
    assert (task.owner, task.lease_expires_at, task.runs) == (manager.worker_id, NOW - 30, 0)
