"""Claims: one owner at a time, takeover only after the lease ran out, outcomes only by
the owner, against a real (SQLite) store."""

from __future__ import annotations

import pytest

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


def _open(task_id: str, action: str, created_at: float = 1.0) -> None:
    tasks.record(task_id, "i-2", "p", action, "alice", f"req-{task_id}", created_at)


@pytest.mark.parametrize("ahead", ["configure", "configure_set"])
def test_a_restart_is_taken_behind_a_configuration_change(task: str, ahead: str) -> None:
    _open("t-c", ahead)
    assert not tasks.is_busy_for("i-2", "restart")
    _open("t-r", "restart", created_at=2.0)
    restart = Task.get_by_id("t-r")
    assert [t.id for t in tasks.ahead_of(restart)] == ["t-c"]
    assert tasks.waited_for(Task.get_by_id("t-c"))
    assert not tasks.waited_for(restart)


@pytest.mark.parametrize(
    ("open_action", "asked"),
    [
        ("configure", "update_access"),
        ("configure", "resize"),
        ("configure", "promote"),
        ("configure_set", "detach"),
        ("backup", "restart"),
        ("restart", "restart"),
        ("create", "restart"),
        ("resize", "restart"),
    ],
)
def test_any_other_open_task_refuses_a_new_operation(
    task: str, open_action: str, asked: str
) -> None:
    _open("t-o", open_action)
    assert tasks.is_busy_for("i-2", asked)


def test_a_restart_waits_only_for_changes_open_and_recorded_before_it(task: str) -> None:
    _open("t-r", "restart", created_at=2.0)
    _open("t-later", "configure", created_at=3.0)  # raced in after the restart
    _open("t-done", "configure", created_at=1.0)
    assert tasks.claim("t-done", "tm-1", 1.5, 30.0)
    assert tasks.finish("t-done", "tm-1", 1.6, ok=True)
    assert tasks.ahead_of(Task.get_by_id("t-r")) == []
    assert not tasks.waited_for(Task.get_by_id("t-later"))


def test_waiting_for_tasks_returns_those_ended_by_its_deadline(
    task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _open("t-a", "configure")
    _open("t-b", "configure")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if not Task.get_by_id("t-a").finished_at:
            assert tasks.claim("t-a", "tm-1", 1.0, 30.0)
            assert tasks.finish("t-a", "tm-1", 2.0, ok=True)

    monkeypatch.setattr(tasks.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(tasks.time, "sleep", sleep)
    assert [t.id for t in tasks.wait_until_ended(["t-a", "t-b"], within=5.0)] == ["t-a"]
    assert now[0] >= 5.0
    assert tasks.claim("t-b", "tm-1", 1.0, 30.0)
    assert tasks.finish("t-b", "tm-1", 2.0, ok=False, message="boom")
    ended = tasks.wait_until_ended(["t-a", "t-b"], within=5.0)
    assert sorted(t.id for t in ended) == ["t-a", "t-b"]
