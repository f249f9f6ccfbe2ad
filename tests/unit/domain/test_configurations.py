"""Attaching, detaching and changing configuration groups against a real (SQLite) store
with the host's PostgreSQL's own parameter rules, the task managers stood in for: the
request answers once the tasks that put its values in effect ended, and says so plainly
(503) when one failed or did not end in time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import rows
from trove_svc.bus.messages import RunTask
from trove_svc.domain import catalog, errors, tasks
from trove_svc.domain.configurations import ConfigurationService
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.store.db import open_store
from trove_svc.store.models import Instance, Task
from trove_wire.envelope import Context

CALLER = Caller("p1", Context(project="p1", user="alice"))
WAIT = 0.3


class TaskManagers:
    """The task managers, stood in for: each task cast ends at once as `ending` says
    (ok, and its message), or stays open (None)."""

    def __init__(self) -> None:
        self.ending: tuple[bool, str] | None = (True, "applied work_mem")
        self.sent: list[RunTask] = []

    def run_task(self, message: RunTask, context: Context) -> None:
        self.sent.append(message)
        if self.ending is None:
            return
        ok, said = self.ending
        assert tasks.claim(message.task_id, "tm-1", 1.0, 30.0)
        assert tasks.finish(message.task_id, "tm-1", 2.0, ok=ok, message=said)


@pytest.fixture
def taskmanagers() -> TaskManagers:
    return TaskManagers()


@pytest.fixture
def groups(
    tmp_path: Path,
    taskmanagers: TaskManagers,
    postgresql_described: list[dict[str, Any]],
    keep_description: Callable[[str, list[dict[str, Any]]], None],
) -> Iterator[ConfigurationService]:
    settings = Settings(state_dir=tmp_path, configuration_wait=WAIT)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    keep_description("postgresql", postgresql_described)
    rows.instance()
    yield ConfigurationService(settings, taskmanagers)  # type: ignore[arg-type]
    database.close()


def _group(groups: ConfigurationService, values: dict[str, Any]) -> str:
    body = {"configuration": {"name": "tuned", "values": values}}
    return str(groups.create(CALLER, body).id)


def _instance() -> Instance:
    return Instance.get_by_id("i-1")


def _configure_tasks() -> list[Task]:
    return list(Task.select().where(Task.action == "configure"))


def test_an_attach_answers_once_its_values_are_in_effect(
    groups: ConfigurationService, taskmanagers: TaskManagers
) -> None:
    group = _group(groups, {"work_mem": 8192})
    groups.attach(CALLER, _instance(), group)
    (task,) = _configure_tasks()
    assert task.state == tasks.TaskState.SUCCEEDED
    assert [sent.task_id for sent in taskmanagers.sent] == [task.id]
    assert _instance().configuration_id == group


def test_an_attach_whose_values_could_not_be_applied_says_why(
    groups: ConfigurationService, taskmanagers: TaskManagers
) -> None:
    group = _group(groups, {"work_mem": 8192})
    taskmanagers.ending = (False, "The values are written, but applying them failed: no guest")
    with pytest.raises(errors.ServiceUnavailable) as refused:
        groups.attach(CALLER, _instance(), group)
    assert refused.value.message == (
        f"Configuration group {group} is attached to instance i-1, but putting its values in "
        "effect on instance i-1 failed: The values are written, but applying them failed: "
        "no guest"
    )
    assert _instance().configuration_id == group  # attached: a restart puts them in effect


def test_an_attach_not_in_effect_in_time_says_so_and_its_task_goes_on(
    groups: ConfigurationService, taskmanagers: TaskManagers
) -> None:
    group = _group(groups, {"work_mem": 8192})
    taskmanagers.ending = None
    with pytest.raises(errors.ServiceUnavailable) as refused:
        groups.attach(CALLER, _instance(), group)
    assert refused.value.message.startswith(
        f"Configuration group {group} is attached to instance i-1, but its values were not "
        f"yet in effect on instance(s) i-1 after {WAIT:g} s (TROVE_SVC_CONFIGURATION_WAIT)"
    )
    (task,) = _configure_tasks()
    assert task.state == tasks.TaskState.QUEUED


def test_a_detach_and_a_change_of_the_group_wait_for_their_tasks_too(
    groups: ConfigurationService, taskmanagers: TaskManagers
) -> None:
    group = _group(groups, {"work_mem": 8192})
    groups.attach(CALLER, _instance(), group)
    taskmanagers.ending = None
    change = {"configuration": {"values": {"work_mem": 16384}}}
    with pytest.raises(errors.ServiceUnavailable, match="not yet in effect"):
        groups.update(CALLER, group, change, merge=True)
    with pytest.raises(errors.ServiceUnavailable, match="not yet in effect"):
        groups.detach(CALLER, _instance())
    assert len(_configure_tasks()) == 3


def test_a_change_that_reaches_no_running_instance_answers_at_once(
    groups: ConfigurationService, taskmanagers: TaskManagers
) -> None:
    group = _group(groups, {"work_mem": 8192})
    taskmanagers.ending = None
    groups.update(CALLER, group, {"configuration": {"values": {"work_mem": 16384}}}, merge=True)
    assert taskmanagers.sent == []
