"""The flows that put configuration groups in effect (configure, configure_set) from their
entry points, against a real SQLite store holding the host's PostgreSQL's own parameter
rules, with the runner and the guests stood in for: each ends its task and its instances
as the happy path and each step's failure say, and a run that lost its task writes no
outcome. (`test_configure_set` covers a set's order, a failed restart, and a set's change
that loses its task between members.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import (
    INSTANCE_PORT,
    SOURCE_PORT,
    STEPS,
    Effects,
    FakeClock,
    canceled_meanwhile,
)
from trove_svc.domain import status, tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Configuration, DatastoreVersion, Instance, Task
from trove_svc.taskmanager import configure_flow

INSTANCE, SOURCE, REPLICA = "i-1", "s-1", "r-1"
FAILED_STEP = STEPS[1]
BEFORE = {"max_connections": "100", "work_mem": "4096"}


@pytest.fixture
def group(
    effects: Effects,
    postgresql_described: list[dict[str, Any]],
    keep_description: Callable[[str, list[dict[str, Any]]], None],
) -> Callable[[dict[str, Any]], None]:
    """group(values): the configuration group g-1 holds `values` (PostgreSQL's rules)."""
    keep_description("postgresql", postgresql_described)

    def make(values: dict[str, Any]) -> None:
        Configuration.create(
            id="g-1",
            project_id="p1",
            name="tuned",
            datastore_version=DatastoreVersion.get(),
            values=values,
            created_at=0,
            updated_at=0,
        )

    return make


def _task() -> Task:
    return Task.get_by_id("t-1")


def _instance(instance_id: str = INSTANCE) -> Instance:
    return Instance.get_by_id(instance_id)


def _attached(instance_id: str = INSTANCE, **changes: Any) -> None:
    rows.instance(
        id=instance_id, configuration_id="g-1", configuration_values=dict(BEFORE), **changes
    )


# configure


def _configure(effects: Effects) -> None:
    configure_flow.configure(effects.deps, effects.claim("configure", INSTANCE))


def test_configure_applies_dynamic_values_through_the_guest(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"max_connections": 100, "work_mem": 8192})
    _attached()
    _configure(effects)
    assert (_task().state, _task().message) == (TaskState.SUCCEEDED, "applied work_mem")
    instance = _instance()
    assert instance.configuration_values == {"max_connections": "100", "work_mem": "8192"}
    assert not instance.restart_pending
    assert effects.runner.playbooks() == ["instance_configure.yml"]
    assert effects.bus.methods(INSTANCE) == ["apply_configuration"]


def test_configure_of_a_value_that_needs_a_restart_leaves_it_waiting(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"max_connections": 150, "work_mem": 4096})
    _attached()
    _configure(effects)
    assert (_task().state, _task().message) == (
        TaskState.SUCCEEDED,
        "nothing to apply now; a restart puts max_connections in effect",
    )
    instance = _instance()
    assert instance.configuration_values["max_connections"] == "150"
    assert instance.restart_pending
    assert status.shown(instance.status, instance.restart_pending) == status.RESTART_REQUIRED
    assert "instance_restart.yml" not in effects.runner.playbooks()


def test_configure_applies_before_a_restart_taken_while_it_was_open(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    """REBOOT, with a restart recorded after the configure task: the restart waits for it
    (tasks.RUNS_AFTER), so the values are written and the dynamic ones applied first."""
    group({"max_connections": 150, "work_mem": 8192})
    _attached(status=status.REBOOT)
    claim = effects.claim("configure", INSTANCE)
    tasks.record("t-2", INSTANCE, "p1", "restart", "alice", "req-2", effects.settings.clock())
    configure_flow.configure(effects.deps, claim)
    assert (_task().state, _task().message) == (
        TaskState.SUCCEEDED,
        "applied work_mem; a restart puts max_connections in effect",
    )
    assert effects.runner.playbooks() == ["instance_configure.yml"]
    assert effects.bus.methods(INSTANCE) == ["apply_configuration"]
    assert _instance().restart_pending  # until the restart waiting has run


@pytest.mark.parametrize(
    "changes",
    [{"status": status.REBOOT}, {"provisioned": False, "status": status.BUILD}],
    ids=["restarting", "not built"],
)
def test_configure_of_an_instance_not_running_is_skipped(
    effects: Effects,
    clock: FakeClock,
    group: Callable[[dict[str, Any]], None],
    changes: dict[str, Any],
) -> None:
    group({"work_mem": 8192})
    _attached(**changes)
    # A restart that was running before the configure task was recorded does not wait for it.
    tasks.record("t-0", INSTANCE, "p1", "restart", "alice", "req-0", effects.settings.clock())
    clock.advance(1)
    _configure(effects)
    assert (_task().state, _task().message) == (TaskState.SKIPPED, configure_flow.NOT_RUNNING)
    assert effects.runner.ran == []
    assert _instance().configuration_values == BEFORE


def test_configure_whose_values_cannot_be_written_keeps_the_old_ones(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"work_mem": 8192})
    _attached()
    effects.runner.fail("instance_configure.yml", FAILED_STEP, "Permission denied")
    _configure(effects)
    task = _task()
    assert task.state == TaskState.FAILED
    why = f"Step '{FAILED_STEP}' failed: Permission denied"
    assert task.message == f"Writing the values failed: {why}"
    assert task.rc == 2
    instance = _instance()
    assert (instance.configuration_values, instance.status) == (BEFORE, status.ACTIVE)
    assert effects.bus.asked == []


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_configure_whose_guest_cannot_apply_leaves_the_values_for_a_restart(
    effects: Effects, group: Callable[[dict[str, Any]], None], failure: str
) -> None:
    group({"max_connections": 100, "work_mem": 8192})
    _attached()
    getattr(effects.bus, failure)("apply_configuration", INSTANCE)
    _configure(effects)
    task = _task()
    assert task.state == TaskState.FAILED
    assert task.message.startswith(
        "The values are written, but applying them failed: The guest agent"
    )
    instance = _instance()
    assert instance.configuration_values["work_mem"] == "8192"  # in the file
    assert instance.restart_pending


def test_configure_canceled_while_it_ran_writes_no_outcome(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"work_mem": 8192})
    _attached()
    claim = effects.claim("configure", INSTANCE)
    effects.runner.during("instance_configure.yml", lambda: canceled_meanwhile(claim))
    configure_flow.configure(effects.deps, claim)
    task = _task()
    assert (task.state, task.owner) == (TaskState.CANCELED, None)
    assert task.message == "Canceled: the instance is being deleted."
    assert _instance().configuration_values == BEFORE
    assert effects.bus.asked == []


# configure_set


def _set(effects: Effects) -> None:
    _attached(SOURCE, port=SOURCE_PORT)
    _attached(REPLICA, port=INSTANCE_PORT, replica_of_id=SOURCE)


def _configure_set(effects: Effects, members: list[str]) -> None:
    args = {"members": members, "order": "replicas first"}
    configure_flow.configure_set(effects.deps, effects.claim("configure_set", SOURCE, args))


def _audit(instance_id: str) -> list[tuple[str, str]]:
    found = Task.select().where((Task.instance_id == instance_id) & (Task.action == "configure"))
    return [(task.state, task.message) for task in found]


def test_configure_set_whose_first_member_cannot_be_written_stops_there(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"max_connections": 150})
    _set(effects)
    effects.runner.fail("instance_configure.yml", FAILED_STEP, "disk full", REPLICA)
    _configure_set(effects, [REPLICA, SOURCE])
    task = _task()
    assert task.state == TaskState.FAILED
    assert task.message == (
        f"{REPLICA}: Writing the values failed: Step '{FAILED_STEP}' failed: disk full; "
        "the members after it keep their values (replicas first)"
    )
    ((state, _),) = _audit(REPLICA)
    assert state == TaskState.FAILED
    assert _audit(SOURCE) == []
    assert effects.runner.playbooks(SOURCE) == []


def test_configure_set_whose_last_member_s_restart_times_out_fails_on_it(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"max_connections": 150})
    _set(effects)
    effects.runner.time_out("instance_restart.yml", SOURCE)
    _configure_set(effects, [REPLICA, SOURCE])
    task = _task()
    assert task.state == TaskState.FAILED
    assert task.message == (
        f"{SOURCE}: The values are written, but the restart failed: "
        "The task ran past its time limit and was stopped. (replicas first)"
    )
    assert _instance(REPLICA).configuration_values["max_connections"] == "150"
    assert [state for state, _ in _audit(REPLICA)] == [TaskState.SUCCEEDED]


def test_configure_set_passes_over_a_member_not_running(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"max_connections": 150})
    _set(effects)
    Instance.update(status=status.REBOOT).where(Instance.id == REPLICA).execute()
    _configure_set(effects, [REPLICA, SOURCE])
    task = _task()
    assert task.state == TaskState.SUCCEEDED
    assert task.message == f"applied on {SOURCE} (replicas first)"
    ((state, message),) = _audit(REPLICA)
    assert state == TaskState.SUCCEEDED and message.startswith("skipped: ")
    assert effects.runner.playbooks(REPLICA) == []
    assert _instance(REPLICA).configuration_values == BEFORE


def test_configure_set_canceled_during_a_member_s_restart_writes_no_outcome(
    effects: Effects, group: Callable[[dict[str, Any]], None]
) -> None:
    group({"max_connections": 150})
    _set(effects)
    claim = effects.claim("configure_set", SOURCE, {"members": [REPLICA, SOURCE], "order": ""})
    effects.runner.during("instance_restart.yml", lambda: canceled_meanwhile(claim))
    configure_flow.configure_set(effects.deps, claim)
    task = _task()
    assert (task.state, task.owner) == (TaskState.CANCELED, None)
    assert _audit(REPLICA) == [] and _audit(SOURCE) == []
    assert effects.runner.playbooks(SOURCE) == []
