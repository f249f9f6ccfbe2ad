"""The flow engine's one outcome protocol, against a real (SQLite) store: steps in order,
each written on the task; a step's failure ends the task and faults the waiting instance;
a lost task is let go once, with nothing recorded; nothing to do is a skip."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import pytest

from tests import rows
from trove_svc.domain import catalog, status, tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.process import metrics
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import Instance, Task
from trove_svc.taskmanager import engine
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.engine import Flow, FlowState, Outcome, Skip, Step, StepFailed
from trove_svc.taskmanager.leases import Lease

OWNER = "tm-1"


@pytest.fixture
def deps(tmp_path: Path) -> Iterator[FlowDeps]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance(status=status.REBOOT)
    settings = Settings(state_dir=tmp_path / "state", clock=lambda: 10.0)
    none = cast(Any, None)
    yield FlowDeps(settings, none, none, none, none, none)
    database.close()


@pytest.fixture
def claim() -> Claim:
    tasks.record("t-1", "i-1", "p1", "restart", "alice", "req-1", 1.0)
    assert tasks.claim("t-1", OWNER, 1.0, 30.0)
    return Claim(Task.get_by_id("t-1"), OWNER, Lease("t-1", 31.0, 2.0, lambda: 10.0))


@dataclass(kw_only=True)
class Seen(FlowState):
    """What the flow under test went through."""

    events: list[str] = field(default_factory=list)


def _begin(deps: FlowDeps, claim: Claim) -> Seen:
    return Seen(deps=deps, claim=claim)


def _step(name: str, then: Any = None) -> Step[Seen]:
    """A step that notes it ran (and the step the task says it is at), then does `then`."""

    def run(state: Seen) -> None:
        state.events.append(f"{name} at {Task.get_by_id('t-1').current_step}")
        if isinstance(then, BaseException):
            raise then
        if callable(then):
            then(state)

    return Step(name, run)


def _flow(*steps: Step[Seen], **hooks: Any) -> Flow[Seen]:
    """A flow of `steps` whose hooks note they ran."""

    def note(hook: str) -> Any:
        return lambda state, *args: state.events.append(hook + "".join(f" {a}" for a in args))

    return Flow(
        begin=hooks.pop("begin", _begin),
        steps=steps,
        waiting=(status.REBOOT,),
        ended=note("ended"),
        after=note("after"),
        cleanup=note("cleanup"),
        stopped=note("stopped"),
        **hooks,
    )


def _run(flow: Flow[Seen], deps: FlowDeps, claim: Claim) -> list[str]:
    seen: list[list[str]] = []
    begin = flow.begin

    def keep(deps: FlowDeps, claim: Claim) -> Seen:
        state = begin(deps, claim)
        seen.append(state.events)
        return state

    engine.run(replace(flow, begin=keep), deps, claim)
    return seen[0] if seen else []


def _observed(action: str, outcome: str) -> float:
    """How many tasks of `action` the tasks metric counted with `outcome`."""
    for family in metrics.get().tasks.collect():
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels == {
                "action": action,
                "outcome": outcome,
            }:
                return float(sample.value)
    return 0.0


def test_steps_run_in_order_and_the_task_succeeds_with_the_outcome(
    deps: FlowDeps, claim: Claim
) -> None:
    before = _observed("restart", "succeeded")

    def done(state: Seen) -> None:
        state.outcome = Outcome("restarted", rc=0, artifact_dir="/runs/t-1")

    events = _run(_flow(_step("first"), _step("second", done)), deps, claim)

    assert events == ["first at first", "second at second", "cleanup", "ended True", "after"]
    assert claim.lease.ended  # recorded: no longer renewed while `after` runs
    task = Task.get_by_id("t-1")
    assert (task.state, task.message, task.rc, task.artifact_dir, task.owner) == (
        TaskState.SUCCEEDED,
        "restarted",
        0,
        "/runs/t-1",
        None,
    )
    assert task.current_step == "second"
    assert Instance.get_by_id("i-1").status == status.REBOOT
    assert _observed("restart", "succeeded") == before + 1


def test_a_failed_step_ends_the_task_and_faults_the_waiting_instance(
    deps: FlowDeps, claim: Claim
) -> None:
    failure = StepFailed("the run failed", "Restart failed: no disk", "Task t-1 (failed, rc 2).")
    events = _run(_flow(_step("first", failure), _step("never")), deps, claim)

    assert events == ["first at first", "cleanup", "ended False"]
    task = Task.get_by_id("t-1")
    assert (task.state, task.message, task.current_step) == (
        TaskState.FAILED,
        "the run failed",
        "first",
    )
    instance = Instance.get_by_id("i-1")
    assert (instance.status, instance.fault_message, instance.fault_details) == (
        status.ERROR,
        "Restart failed: no disk",
        "Task t-1 (failed, rc 2).",
    )


def test_a_failure_faults_only_an_instance_still_waiting(deps: FlowDeps, claim: Claim) -> None:
    Instance.update(status=status.SHUTDOWN).execute()  # a delete was asked for meanwhile
    _run(_flow(_step("first", StepFailed("the run failed"))), deps, claim)

    assert Task.get_by_id("t-1").state == TaskState.FAILED
    assert Instance.get_by_id("i-1").status == status.SHUTDOWN


def test_a_task_lost_between_steps_is_let_go_and_nothing_recorded(
    deps: FlowDeps, claim: Claim
) -> None:
    def canceled(state: Seen) -> None:
        tasks.end_open("i-1", 5.0, TaskState.CANCELED, "Canceled: the instance is being deleted.")
        state.claim.lease.lose()

    events = _run(_flow(_step("first", canceled), _step("never")), deps, claim)

    assert events == ["first at first", "cleanup", "stopped"]
    task = Task.get_by_id("t-1")
    assert (task.state, task.owner) == (TaskState.CANCELED, None)
    assert Instance.get_by_id("i-1").status == status.REBOOT


def test_a_task_lost_in_its_last_step_records_no_failure(deps: FlowDeps, claim: Claim) -> None:
    def canceled_then_failed(state: Seen) -> None:
        tasks.end_open("i-1", 5.0, TaskState.CANCELED, "Canceled.")
        state.claim.lease.lose()
        raise StepFailed("the run failed")

    events = _run(_flow(_step("first", canceled_then_failed)), deps, claim)

    assert events == ["first at first", "cleanup"]
    assert Task.get_by_id("t-1").state == TaskState.CANCELED
    assert Instance.get_by_id("i-1").status == status.REBOOT


def test_a_flow_that_carries_on_goes_to_its_end_but_records_only_if_still_its_own(
    deps: FlowDeps, claim: Claim
) -> None:
    def taken(state: Seen) -> None:
        tasks.end_open("i-1", 5.0, TaskState.FAILED, "Failed by the watchdog.")
        state.claim.lease.lose()

    flow = _flow(_step("first", taken), _step("second"), holds=engine.carry_on)
    events = _run(flow, deps, claim)

    # The task is no longer its own: its step stays where the task ended.
    assert events == ["first at first", "second at first", "cleanup"]
    task = Task.get_by_id("t-1")
    assert (task.state, task.message) == (TaskState.FAILED, "Failed by the watchdog.")


def test_nothing_to_do_is_a_skip(deps: FlowDeps, claim: Claim) -> None:
    def nothing(deps: FlowDeps, claim: Claim) -> Seen:
        raise Skip("the instance is no longer waiting to restart")

    assert _run(_flow(_step("never"), begin=nothing), deps, claim) == []
    task = Task.get_by_id("t-1")
    assert (task.state, task.message) == (
        TaskState.SKIPPED,
        "the instance is no longer waiting to restart",
    )


def _configure_ahead(created_at: float = 0.5, task_id: str = "t-0") -> None:
    """A configure task of the instance, open, recorded before the restart under test."""
    tasks.record(task_id, "i-1", "p1", "configure", "alice", "req-0", created_at)


def test_a_restart_waits_for_the_configuration_change_ahead_of_it(
    deps: FlowDeps, claim: Claim, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure_ahead()
    shown: list[str] = []

    def configure_ends(seconds: float) -> None:
        shown.append(Task.get_by_id("t-1").current_step)
        assert tasks.claim("t-0", "tm-2", 2.0, 30.0)
        assert tasks.finish("t-0", "tm-2", 3.0, ok=True)

    monkeypatch.setattr(engine.time, "sleep", configure_ends)
    events = _run(_flow(_step("first")), deps, claim)

    assert shown == ["waiting for the configure task t-0 to end"]
    assert events == ["first at first", "cleanup", "ended True", "after"]
    assert Task.get_by_id("t-1").state == TaskState.SUCCEEDED


def test_a_task_that_runs_after_nothing_open_does_not_wait(
    deps: FlowDeps, claim: Claim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only open tasks of the actions it runs after, recorded before it, hold it back."""
    tasks.record("t-b", "i-1", "p1", "backup", "alice", "req-b", 0.5)  # refused at the API
    _configure_ahead(created_at=2.0, task_id="t-later")  # it is not ahead
    _configure_ahead(task_id="t-done")
    assert tasks.claim("t-done", "tm-2", 0.6, 30.0)
    assert tasks.finish("t-done", "tm-2", 0.7, ok=True)
    monkeypatch.setattr(engine.time, "sleep", lambda seconds: pytest.fail("it waited"))

    assert _run(_flow(_step("first")), deps, claim)[0] == "first at first"


def test_a_task_canceled_while_it_waits_is_let_go_without_running(
    deps: FlowDeps, claim: Claim, monkeypatch: pytest.MonkeyPatch
) -> None:
    _configure_ahead()

    def deleted(seconds: float) -> None:
        tasks.end_open("i-1", 5.0, TaskState.CANCELED, "Canceled: the instance is being deleted.")
        claim.lease.lose()

    monkeypatch.setattr(engine.time, "sleep", deleted)
    events = _run(_flow(_step("never")), deps, claim)

    assert events == []
    task = Task.get_by_id("t-1")
    assert (task.state, task.owner) == (TaskState.CANCELED, None)
