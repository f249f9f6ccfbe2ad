"""Tasks: the states an operation goes through, and every move between them, in one place.

A task is recorded QUEUED by the API and claimed by one task manager before its playbook
starts: one conditional update sets the owner and a lease, which the owner renews while it
runs. Only the owner may finish it. A delivery that finds the task finished, or claimed by
an owner whose lease holds, changes nothing. A lease that ran out means the owner died or
stopped its run, unable to renew: another task manager takes the task over and runs it
again (playbooks are idempotent).

A task is started in one way only, `starting`: recorded in the caller's transaction, then
cast to the task managers (the only cast there is).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from enum import StrEnum
from typing import Any

import peewee

from trove_svc.bus.messages import RunTask, TaskManagerClient
from trove_svc.domain import errors
from trove_svc.security.caller import Caller
from trove_svc.store.models import Task, database_proxy


class TaskState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELED = "CANCELED"


OPEN = (TaskState.QUEUED, TaskState.RUNNING)

# The one exception to "one operation at a time on an instance": an action asked for while
# the instance has open tasks of these actions is taken, and runs once they ended, instead
# of being refused (409). Trove takes a restart sent right after a configuration change,
# and the restart puts the change's values in effect.
RUNS_AFTER: dict[str, frozenset[str]] = {
    "restart": frozenset({"configure", "configure_set"}),
}


def record(
    task_id: str,
    instance_id: str,
    project_id: str,
    action: str,
    requested_by: str,
    request_id: str,
    now: float,
    args: dict[str, Any] | None = None,
    sealed_secrets: str | None = None,
    requested_by_project: str = "",
) -> Task:
    """A new QUEUED task; its arguments stay in the store so any task manager can run it.
    Started only through `starting`, which casts it too."""
    return Task.create(
        id=task_id,
        instance_id=instance_id,
        project_id=project_id,
        action=action,
        state=TaskState.QUEUED,
        requested_by=requested_by,
        requested_by_project=requested_by_project,
        request_id=request_id,
        created_at=now,
        args=args or {},
        sealed_secrets=sealed_secrets,
    )


class Starts:
    """The tasks a `starting` block records, to be cast once its transaction is committed."""

    def __init__(self, caller: Caller, now: float) -> None:
        self._caller = caller
        self._now = now
        self.started: list[Task] = []

    def task(
        self,
        task_id: str,
        instance_id: str,
        action: str,
        args: dict[str, Any] | None = None,
        sealed_secrets: str | None = None,
    ) -> None:
        """Record a task QUEUED, asked by the block's caller (the id is the caller's, so
        that secrets can be sealed to it first)."""
        context = self._caller.context
        self.started.append(
            record(
                task_id,
                instance_id,
                self._caller.project_id,
                action,
                context.user,
                context.request_id,
                self._now,
                args=args,
                sealed_secrets=sealed_secrets,
                requested_by_project=context.project,
            )
        )


def _nothing() -> None:
    return None


@contextmanager
def starting(
    taskmanager: TaskManagerClient,
    caller: Caller,
    now: float,
    undo: Callable[[], object] = _nothing,
    transaction: Callable[[], AbstractContextManager[Any]] = database_proxy.atomic,
) -> Iterator[Starts]:
    """The one way to start tasks. The block records the caller's own changes and each
    task (`Starts.task`) in one transaction; a refusal raised in it records nothing. Once
    it is committed, each task is cast to the task managers, which claim it in the store
    before they run it (a redelivery or a second cast runs nothing twice). Never inside
    another transaction: a task manager must find the task once its cast arrives.

    If the bus cannot take a cast, the block's tasks are deleted and `undo` puts the
    caller's changes back, in one transaction, and ServiceUnavailable is raised: the
    refused request leaves everything as it was (a cast already sent finds no task)."""
    starts = Starts(caller, now)
    with transaction():
        yield starts
    try:
        for task in starts.started:
            taskmanager.run_task(RunTask(task.id, task.instance_id), caller.context)
    except errors.ServiceUnavailable:
        with database_proxy.atomic():
            Task.delete().where(Task.id.in_([task.id for task in starts.started])).execute()
            undo()
        raise


def record_done(
    task_id: str,
    instance_id: str,
    project_id: str,
    action: str,
    requested_by: str,
    request_id: str,
    started: float,
    finished: float,
    ok: bool,
    message: str,
    *,
    requested_by_project: str,
) -> Task:
    """An operation carried out at once (a guest call, a record change): in the audit
    trail with who asked, what, when and how it ended, though no Ansible run was needed."""
    return Task.create(
        id=task_id,
        instance_id=instance_id,
        project_id=project_id,
        action=action,
        state=TaskState.SUCCEEDED if ok else TaskState.FAILED,
        requested_by=requested_by,
        requested_by_project=requested_by_project,
        request_id=request_id,
        created_at=started,
        started_at=started,
        finished_at=finished,
        message=message[:1000],
    )


def claim(task_id: str, owner: str, now: float, lease: float) -> bool:
    """Take the task if it waits, or if its owner's lease ran out. True if now ours."""
    claimed: int = (
        Task.update(
            state=TaskState.RUNNING,
            owner=owner,
            lease_expires_at=now + lease,
            started_at=peewee.fn.COALESCE(Task.started_at, now),
        )
        .where(
            (Task.id == task_id)
            & (
                (Task.state == TaskState.QUEUED)
                | ((Task.state == TaskState.RUNNING) & (Task.lease_expires_at < now))
            )
        )
        .execute()
    )
    return claimed == 1


def renew(task_id: str, owner: str, now: float, lease: float) -> bool:
    """Extend our lease; False once the task is no longer ours (canceled, failed, taken)
    or its lease ran out (another may be taking it over: our run has stopped itself)."""
    renewed: int = (
        Task.update(lease_expires_at=now + lease)
        .where(
            (Task.id == task_id)
            & (Task.owner == owner)
            & (Task.state == TaskState.RUNNING)
            & (Task.lease_expires_at >= now)
        )
        .execute()
    )
    return renewed == 1


def owns(task_id: str, owner: str) -> bool:
    """Whether the task is still running as `owner`'s, as the store says now."""
    return bool(
        Task.select()
        .where((Task.id == task_id) & (Task.owner == owner) & (Task.state == TaskState.RUNNING))
        .exists()
    )


def run_elsewhere(task_id: str, owner: str) -> bool:
    """Whether another owner now runs the task (it was taken over, not ended)."""
    return bool(
        Task.select()
        .where((Task.id == task_id) & (Task.owner != owner) & (Task.state == TaskState.RUNNING))
        .exists()
    )


def start_run(task_id: str, owner: str, playbook: str) -> None:
    """Count one more Ansible run of the task (the audit trail shows retries and takeovers)."""
    Task.update(runs=Task.runs + 1, playbook=playbook).where(
        (Task.id == task_id) & (Task.owner == owner)
    ).execute()


def _end(task_id: str, owner: str, **fields: Any) -> bool:
    ended: int = (
        Task.update(owner=None, lease_expires_at=None, sealed_secrets=None, **fields)
        .where((Task.id == task_id) & (Task.owner == owner) & (Task.state == TaskState.RUNNING))
        .execute()
    )
    return ended == 1


def finish(
    task_id: str,
    owner: str,
    now: float,
    ok: bool,
    rc: int | None = None,
    artifact_dir: str | None = None,
    failed_step: str | None = None,
    message: str | None = None,
) -> bool:
    """The owner records the outcome; False if the task was taken from it meanwhile."""
    return _end(
        task_id,
        owner,
        state=TaskState.SUCCEEDED if ok else TaskState.FAILED,
        rc=rc,
        finished_at=now,
        artifact_dir=artifact_dir,
        failed_step=failed_step,
        message=message,
    )


def skip(task_id: str, owner: str, now: float, why: str) -> bool:
    return _end(task_id, owner, state=TaskState.SKIPPED, message=why, finished_at=now)


def release(task_id: str, owner: str, why: str, now: float) -> None:
    """Give a claimed task back after an attempt that failed unexpectedly, for a retry
    (its wait for a task manager starts again now)."""
    Task.update(
        state=TaskState.QUEUED, owner=None, lease_expires_at=None, message=why, queued_at=now
    ).where(
        (Task.id == task_id) & (Task.owner == owner) & (Task.state == TaskState.RUNNING)
    ).execute()


def let_go(task_id: str, owner: str) -> None:
    """Drop our claim on a task that someone else ended (canceled or failed) meanwhile."""
    Task.update(owner=None, lease_expires_at=None).where(
        (Task.id == task_id) & (Task.owner == owner) & (Task.state.not_in(OPEN))
    ).execute()


def end_open(
    instance_id: str, now: float, state: TaskState, why: str, sparing: str | None = None
) -> int:
    """Cancel or fail every open task of an instance (but `sparing`); a running owner stops
    at its next renewal. Returns how many were ended."""
    ended: int = (
        Task.update(state=state, message=why, finished_at=now, sealed_secrets=None)
        .where(
            (Task.instance_id == instance_id) & Task.state.in_(OPEN) & (Task.id != (sparing or ""))
        )
        .execute()
    )
    return ended


def fail_queued(task_id: str, now: float, why: str) -> bool:
    """A task that could not be carried out at all (its message was dead-lettered)."""
    failed: int = (
        Task.update(
            state=TaskState.FAILED,
            message=why,
            finished_at=now,
            owner=None,
            lease_expires_at=None,
            sealed_secrets=None,
        )
        .where((Task.id == task_id) & Task.state.in_(OPEN))
        .execute()
    )
    return failed == 1


def is_busy(instance_id: str, ignoring: Collection[str] = ()) -> bool:
    """Whether a task of the instance is open, apart from those of the actions `ignoring`."""
    condition = (Task.instance_id == instance_id) & Task.state.in_(OPEN)
    if ignoring:
        condition &= Task.action.not_in(list(ignoring))
    return bool(Task.select().where(condition).exists())


def is_busy_for(instance_id: str, action: str) -> bool:
    """Whether an open task of the instance refuses a new `action` (409): any open task but
    those `action` runs after (`RUNS_AFTER`)."""
    return is_busy(instance_id, ignoring=RUNS_AFTER.get(action, frozenset()))


def ahead_of(task: Task) -> list[Task]:
    """The open tasks of `task`'s instance that it runs after (`RUNS_AFTER`: of those
    actions, and recorded no later than it), oldest first."""
    after = RUNS_AFTER.get(task.action)
    if not after:
        return []
    return list(
        Task.select()
        .where(
            (Task.instance_id == task.instance_id)
            & (Task.id != task.id)
            & Task.state.in_(OPEN)
            & Task.action.in_(sorted(after))
            & (Task.created_at <= task.created_at)
        )
        .order_by(Task.created_at, Task.id)
    )


def waited_for(task: Task) -> bool:
    """Whether an open task of `task`'s instance waits for it to end (`ahead_of`)."""
    waiting = [action for action, after in RUNS_AFTER.items() if task.action in after]
    return bool(
        waiting
        and Task.select()
        .where(
            (Task.instance_id == task.instance_id)
            & (Task.id != task.id)
            & Task.state.in_(OPEN)
            & Task.action.in_(waiting)
            & (Task.created_at >= task.created_at)
        )
        .exists()
    )


def wait_until_ended(task_ids: Collection[str], within: float, poll: float = 0.1) -> list[Task]:
    """Wait up to `within` seconds for the tasks to end (in any state); those that have, by
    then, as the store has them."""
    deadline = time.monotonic() + within
    while True:
        done = list(Task.select().where(Task.id.in_(list(task_ids)) & Task.state.not_in(OPEN)))
        if len(done) == len(task_ids) or time.monotonic() >= deadline:
            return done
        time.sleep(poll)


def others_held(instance_id: str, task_id: str, now: float) -> bool:
    """Whether a run of another task of the instance may still be going (its owner holds a
    lease): a delete waits for such a run to stop before it tears anything down."""
    return bool(
        Task.select()
        .where(
            (Task.instance_id == instance_id)
            & (Task.id != task_id)
            & Task.owner.is_null(False)
            & (Task.lease_expires_at >= now)
        )
        .exists()
    )


def expired_leases(now: float) -> list[str]:
    """Running tasks whose owner stopped renewing: candidates for a takeover."""
    rows = Task.select(Task.id).where(
        (Task.state == TaskState.RUNNING) & (Task.lease_expires_at < now)
    )
    return [row.id for row in rows]


def holding_leases(task_ids: set[str], now: float) -> set[str]:
    """Those of `task_ids` that are running under a lease that has not run out."""
    rows = Task.select(Task.id).where(
        Task.id.in_(list(task_ids))
        & (Task.state == TaskState.RUNNING)
        & (Task.lease_expires_at >= now)
    )
    return {row.id for row in rows}


def stale_queued(older_than: float) -> list[Task]:
    """Tasks waiting for a task manager since before `older_than`."""
    waiting_since = peewee.fn.COALESCE(Task.queued_at, Task.created_at)
    return list(
        Task.select().where((Task.state == TaskState.QUEUED) & (waiting_since < older_than))
    )
