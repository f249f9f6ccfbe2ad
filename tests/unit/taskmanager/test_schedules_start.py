"""A due schedule starts its backup as a request does: recorded as the schedule's and cast
to the task managers, once per run; a backup that cannot be taken is in the audit trail
and casts nothing. Against a real (SQLite) store, the bus stood in for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import rows
from trove_svc.domain import catalog, status
from trove_svc.process.settings import Settings
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import Backup, Instance, Schedule, Task
from trove_svc.taskmanager.service import TaskManager
from trove_wire import seal
from trove_wire.envelope import Context

NOW = 1_000_000.0


class Bus:
    """The bus, stood in for: the casts published to the task managers."""

    url = "amqp://nowhere:1/"

    def __init__(self) -> None:
        self.casts: list[tuple[str, dict[str, Any], Context]] = []

    def cast_task(self, method: str, args: dict[str, Any], context: Context) -> None:
        self.casts.append((method, args, context))


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[TaskManager]:
    settings = Settings(state_dir=tmp_path, taskmanager_workers=1, clock=lambda: NOW)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance()
    Schedule.create(
        id="s-1",
        instance_id="i-1",
        project_id="p1",
        name="nightly",
        cron="0 3 * * *",
        next_run_at=NOW - 1,
        created_at=0,
    )
    deps: Any = SimpleNamespace(settings=settings, keys=ServiceKeys(seal.new_key()), bus=Bus())
    yield TaskManager(deps)
    database.close()


def test_a_due_schedule_starts_its_backup_once(manager: TaskManager) -> None:
    manager.run_schedules()
    manager.run_schedules()  # the same run: the schedule moved on to its next
    [backup] = Backup.select()
    [task] = Task.select()
    assert (backup.schedule_id, backup.state, Instance.get_by_id("i-1").status) == (
        "s-1",
        "NEW",
        status.BACKUP,
    )
    assert (task.action, task.state, task.args) == ("backup", "QUEUED", {"backup_id": backup.id})
    assert (task.project_id, task.requested_by) == ("p1", "schedule nightly")
    assert manager.deps.bus.casts == [
        (
            "run_task",
            {"task_id": task.id, "instance_id": "i-1"},
            Context(project="p1", user="schedule nightly"),
        )
    ]


def test_a_backup_the_instance_cannot_take_now_is_recorded_and_casts_nothing(
    manager: TaskManager,
) -> None:
    Instance.update(status=status.REBOOT).where(Instance.id == "i-1").execute()
    manager.run_schedules()
    [task] = Task.select()
    assert (task.action, task.state, task.requested_by) == ("backup", "FAILED", "schedule nightly")
    assert task.message.startswith("scheduled backup not taken")
    assert Backup.select().count() == 0
    assert manager.deps.bus.casts == []
