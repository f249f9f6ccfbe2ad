"""The flow engine: a flow is a list of named steps with one failure path.

The engine runs a flow's steps in order on a claimed task (`trove_svc.domain.tasks`), writing the
step it is at on the task (`Task.current_step`). The outcome is decided here and nowhere
else: a step that raises `StepFailed` ends the task FAILED and, for a flow whose instance
waits in a status, puts that instance in ERROR with the step's fault; a run that finds its
task no longer its own (`Lost`, or a claim that stopped holding) lets the task go and
records nothing; otherwise the task SUCCEEDED. Each outcome is counted in the tasks metric.

A task taken while tasks it runs after were open (`tasks.RUNS_AFTER`: a restart sent
during a configuration change) first waits for them to end, the wait written on the task.

A flow names what its steps share in a state object made by its `begin`, which may say
there is nothing to do (`Skip`). Its hooks add what the outcome means for its records: in
the transaction that ends the task (`ended`), after a success (`after`), on the way out
whatever happened (`cleanup`), and when the run stopped early (`stopped`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from trove_svc.domain import status, tasks
from trove_svc.process import metrics
from trove_svc.store.models import Task, database_proxy
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.runner import RunResult

LOG = logging.getLogger(__name__)


class Skip(Exception):
    """Nothing to do (the instance no longer waits for the task): the task is SKIPPED."""


class Lost(Exception):
    """The task is no longer this run's (its run was canceled, or the claim lost)."""


class StepFailed(Exception):
    """A step failed: the task ends FAILED with `message` (and the run's rc, artifacts and
    failed Ansible step, if a run failed); the instance's fault says `fault` (by default
    the same), with `details`."""

    def __init__(
        self,
        message: str,
        fault: str | None = None,
        details: str | None = None,
        result: RunResult | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fault = fault if fault is not None else message
        self.details = details
        self.result = result


@dataclass
class Outcome:
    """What a succeeded task records besides its state (a step sets it)."""

    message: str | None = None
    rc: int | None = None
    artifact_dir: str | None = None

    @classmethod
    def of_run(cls, result: RunResult, message: str | None = None) -> Outcome:
        return cls(message=message, rc=result.rc, artifact_dir=result.artifact_dir)


@dataclass(kw_only=True)
class FlowState:
    """What every flow's steps share: the task manager's parts, the claim on the task, and
    the outcome to record if no step fails. A flow's own state adds its fields."""

    deps: FlowDeps
    claim: Claim
    outcome: Outcome = field(default_factory=Outcome)


S = TypeVar("S", bound=FlowState)


@dataclass(frozen=True)
class Step(Generic[S]):
    name: str
    run: Callable[[S], None]


def _still_ours(claim: Claim) -> bool:
    return claim.still_ours()


@dataclass(frozen=True)
class Flow(Generic[S]):
    """A flow: how it finds what it works on, its steps, and what its outcome records."""

    # The state the steps share, made from the task; raises `Skip` if there is nothing to do.
    begin: Callable[[FlowDeps, Claim], S]
    steps: Sequence[Step[S]]
    # The instance's statuses while it waits for the task: a failure's fault moves it from
    # one of them to ERROR (a delete asked for meanwhile wins). Empty: a failure faults
    # nothing (the instance was never waiting).
    waiting: tuple[str, ...] = ()
    # Whether the task is still this run's: asked before each step and before the outcome
    # is recorded. A flow that must not be carried on by two runs asks the store
    # (`Claim.confirmed`); one that must get to its end asks nothing (`carry_on`): its
    # outcome is then recorded only if the store still names it ours.
    holds: Callable[[Claim], bool] = _still_ours
    # In the transaction that ends the task (given whether it succeeded).
    ended: Callable[[S, bool], None] | None = None
    # Once the task ended SUCCEEDED, after that transaction.
    after: Callable[[S], None] | None = None
    # After the steps, whatever happened (before the outcome is recorded).
    cleanup: Callable[[S], None] | None = None
    # When the run stopped before its end because the task was no longer its own.
    stopped: Callable[[S], None] | None = None


def carry_on(claim: Claim) -> bool:
    """For `Flow.holds`: a flow that, once started, goes to its end."""
    return True


# How often a task waiting for the tasks ahead of it looks again.
WAIT_POLL = 0.2


def _wait_for_tasks_ahead(claim: Claim) -> bool:
    """Wait until no task that `claim`'s runs after (`tasks.RUNS_AFTER`) is open; False if
    the task stopped being ours meanwhile (a delete canceled it, or a limit ran out)."""
    shown = None
    while ahead := tasks.ahead_of(claim.task):
        waiting = f"waiting for the {ahead[0].action} task {ahead[0].id} to end"
        if waiting != shown:
            _enter(claim, waiting)
            shown = waiting
        time.sleep(WAIT_POLL)
        if not claim.still_ours():
            return False
    return True


def run(flow: Flow[S], deps: FlowDeps, claim: Claim) -> None:
    """Run `flow` on the claimed task and record its outcome."""
    if not _wait_for_tasks_ahead(claim):
        _let_go(deps, claim)
        return
    try:
        state = flow.begin(deps, claim)
    except Skip as skip:
        _skip(deps, claim, str(skip))
        return
    try:
        _run_steps(flow, state)
    except Lost:
        if flow.stopped is not None:
            flow.stopped(state)
        _let_go(deps, claim)
    except StepFailed as failure:
        _end(flow, state, failure)
    else:
        _end(flow, state, None)


def _run_steps(flow: Flow[S], state: S) -> None:
    try:
        for step in flow.steps:
            if not flow.holds(state.claim):
                LOG.warning("task %s is no longer ours; stopping before %s", _id(state), step.name)
                raise Lost
            _enter(state.claim, step.name)
            step.run(state)
    finally:
        if flow.cleanup is not None:
            flow.cleanup(state)


def _id(state: FlowState) -> str:
    return str(state.claim.task.id)


def _enter(claim: Claim, step: str) -> None:
    Task.update(current_step=step).where(
        (Task.id == claim.task.id)
        & (Task.owner == claim.owner)
        & (Task.state == tasks.TaskState.RUNNING)
    ).execute()


def _end(flow: Flow[S], state: S, failure: StepFailed | None) -> None:
    """Record the outcome if the task is still ours; a failure faults the waiting instance."""
    deps, claim = state.deps, state.claim
    if not flow.holds(claim):
        _let_go(deps, claim)
        return
    ok = failure is None
    _observe(deps, claim, "succeeded" if ok else "failed")
    now = deps.settings.clock()
    with database_proxy.atomic():
        if not _finish(state, failure, now):
            return
        if failure is not None and flow.waiting:
            status.record_fault(
                claim.task.instance_id,
                now,
                failure.fault,
                failure.details,
                only_from=flow.waiting,
            )
        if flow.ended is not None:
            flow.ended(state, ok)
    # Recorded: the task is no longer ours to renew, though its run goes on with `after`.
    claim.lease.end()
    if ok and flow.after is not None:
        flow.after(state)


def _finish(state: FlowState, failure: StepFailed | None, now: float) -> bool:
    claim = state.claim
    if failure is None:
        done = state.outcome
        return tasks.finish(
            claim.task.id,
            claim.owner,
            now,
            ok=True,
            rc=done.rc,
            artifact_dir=done.artifact_dir,
            message=done.message,
        )
    LOG.info("task %s (%s) failed: %s", claim.task.id, claim.task.action, failure.message)
    result = failure.result
    return tasks.finish(
        claim.task.id,
        claim.owner,
        now,
        ok=False,
        rc=result.rc if result else None,
        artifact_dir=result.artifact_dir if result else None,
        failed_step=result.failed_step if result else None,
        message=failure.message,
    )


def _let_go(deps: FlowDeps, claim: Claim) -> None:
    tasks.let_go(claim.task.id, claim.owner)
    _observe(deps, claim, "canceled")
    LOG.info("task %s was taken from this run; leaving it", claim.task.id)


def _skip(deps: FlowDeps, claim: Claim, why: str) -> None:
    LOG.info("task %s skipped: %s", claim.task.id, why)
    _observe(deps, claim, "skipped")
    tasks.skip(claim.task.id, claim.owner, deps.settings.clock(), why)


def _observe(deps: FlowDeps, claim: Claim, outcome: str) -> None:
    started = claim.task.started_at or deps.settings.clock()
    metrics.get().tasks.labels(claim.task.action, outcome).observe(
        max(0.0, deps.settings.clock() - started)
    )


def lost_if_canceled(result: RunResult) -> None:
    """A run stopped because its claim stopped holding: the task is no longer ours."""
    if result.canceled:
        raise Lost
