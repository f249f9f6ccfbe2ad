"""Claims: one owner at a time, takeover only after the lease ran out, outcomes only by
the owner, against a real (SQLite) store."""

from __future__ import annotations

from trove_svc.domain import tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Task


def test_one_claim_wins_and_a_live_owner_keeps_it(task: str) -> None:
    assert tasks.claim(task, "tm-1", now=10.0, lease=30.0)
    assert not tasks.claim(task, "tm-2", now=20.0, lease=30.0)
    assert Task.get_by_id(task).owner == "tm-1"


def test_an_expired_lease_is_taken_over_and_the_old_owner_loses_it(task: str) -> None:
    assert tasks.claim(task, "tm-1", now=10.0, lease=30.0)
    assert tasks.claim(task, "tm-2", now=41.0, lease=30.0)
    assert not tasks.renew(task, "tm-1", now=42.0, lease=30.0)
    assert not tasks.finish(task, "tm-1", 43.0, ok=True)
    assert tasks.finish(task, "tm-2", 44.0, ok=True, rc=0)
    row = Task.get_by_id(task)
    assert (row.state, row.owner, row.sealed_secrets) == (TaskState.SUCCEEDED, None, None)


def test_a_finished_task_is_never_claimed_again(task: str) -> None:
    assert tasks.claim(task, "tm-1", now=10.0, lease=30.0)
    assert tasks.finish(task, "tm-1", 11.0, ok=False, message="boom")
    assert not tasks.claim(task, "tm-2", now=1000.0, lease=30.0)
    assert Task.get_by_id(task).state == TaskState.FAILED


def test_canceling_takes_the_task_from_its_owner(task: str) -> None:
    assert tasks.claim(task, "tm-1", now=10.0, lease=30.0)
    tasks.record("t-2", "i-1", "p", "delete", "alice", "req-2", 11.0)
    assert tasks.end_open("i-1", 12.0, TaskState.CANCELED, "deleted", sparing="t-2") == 1
    assert not tasks.renew(task, "tm-1", now=13.0, lease=30.0)
    assert tasks.others_held("i-1", "t-2", now=13.0)  # its run has not stopped yet
    tasks.let_go(task, "tm-1")
    assert not tasks.others_held("i-1", "t-2", now=13.0)
    assert Task.get_by_id("t-2").state == TaskState.QUEUED


def test_a_released_task_is_claimed_again(task: str) -> None:
    assert tasks.claim(task, "tm-1", now=10.0, lease=30.0)
    tasks.release(task, "tm-1", "attempt failed", now=11.0)
    assert tasks.claim(task, "tm-2", now=11.0, lease=30.0)


def test_a_released_task_waits_for_a_task_manager_from_its_release(task: str) -> None:
    """A long attempt that failed is given back: its wait is timed from then, not from
    its creation (else the watchdog would fail it at once)."""
    assert tasks.claim(task, "tm-1", now=10.0, lease=30.0)
    tasks.release(task, "tm-1", "attempt failed", now=500.0)
    assert tasks.stale_queued(older_than=400.0) == []
    assert [t.id for t in tasks.stale_queued(older_than=501.0)] == [task]
