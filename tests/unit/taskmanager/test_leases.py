"""Leases: a claim holds while renewed, stops holding a margin before it would run out,
is renewed on a thread of its own, and a run whose claim stops holding is canceled quickly.
Against a real (SQLite) store and a real ansible-runner run."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from trove_svc.domain import tasks
from trove_svc.process.settings import PROJECT_ROOT, Settings
from trove_svc.store.models import Task
from trove_svc.taskmanager.deps import Claim
from trove_svc.taskmanager.leases import STOP_MARGIN, Leases
from trove_svc.taskmanager.runner import PlaybookRunner

LEASE = 30.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def claimed(task: str, clock: Callable[[], float], lease: float = LEASE) -> tuple[Leases, Claim]:
    leases = Leases("tm-1", lease, clock)
    assert tasks.claim(task, "tm-1", clock(), lease)
    held = leases.hold(task, claimed_at=clock())
    return leases, Claim(Task.get_by_id(task), "tm-1", held)


def test_a_lease_stops_holding_a_margin_before_it_runs_out(task: str) -> None:
    clock = Clock(100.0)
    _, claim = claimed(task, clock)
    clock.now = 100.0 + LEASE - STOP_MARGIN - 0.01
    assert claim.still_ours() and not claim.gone()
    clock.now = 100.0 + LEASE - STOP_MARGIN
    assert not claim.still_ours() and claim.gone()
    # The store still says it is ours: no other task manager may take it for 2 s more.
    assert not tasks.claim(task, "tm-2", clock.now, LEASE)


@pytest.mark.parametrize("lease", [1.0, 3.0, 6.0, 30.0, 300.0])
def test_an_unrenewed_run_stops_before_its_lease_runs_out_yet_survives_a_missed_renewal(
    lease: float,
) -> None:
    leases = Leases("tm-1", lease, Clock(0.0))
    assert 0 < leases.stop_margin <= STOP_MARGIN
    assert lease - leases.stop_margin > leases.renew_every


def test_a_claim_whose_lease_ran_out_is_not_confirmed_though_no_one_took_it(task: str) -> None:
    clock = Clock(100.0)
    _, claim = claimed(task, clock)
    assert claim.confirmed()
    clock.now = 100.0 + LEASE + 1
    assert tasks.owns(task, "tm-1")  # the store still names it ours: nobody took it yet
    assert not claim.confirmed()


def test_renewing_extends_the_lease(task: str) -> None:
    clock = Clock(100.0)
    leases, claim = claimed(task, clock)
    clock.now = 125.0
    leases.renew_all()
    clock.now = 100.0 + LEASE + 10
    assert claim.still_ours()
    assert Task.get_by_id(task).lease_expires_at == 125.0 + LEASE


def test_a_claim_taken_over_is_lost_at_the_next_renewal(task: str) -> None:
    clock = Clock(100.0)
    leases, claim = claimed(task, clock)
    assert tasks.claim(task, "tm-2", 100.0 + LEASE + 1, LEASE)
    clock.now = 100.0 + 1
    leases.renew_all()
    assert claim.lease.lost and claim.gone()


def test_a_canceled_task_is_lost_at_the_next_renewal(task: str) -> None:
    clock = Clock(100.0)
    leases, claim = claimed(task, clock)
    tasks.end_open("i-1", 101.0, tasks.TaskState.CANCELED, "deleted")
    clock.now = 102.0
    leases.renew_all()
    assert claim.lease.lost


def test_a_lease_that_ran_out_is_not_renewed(task: str) -> None:
    """Its run stopped itself; another task manager may be taking the task over."""
    clock = Clock(100.0)
    leases, claim = claimed(task, clock)
    clock.now = 100.0 + LEASE + 0.5
    leases.renew_all()
    assert claim.lease.lost
    assert Task.get_by_id(task).lease_expires_at == 100.0 + LEASE


def test_a_store_that_cannot_be_reached_lets_the_lease_run_out(task: str) -> None:
    clock = Clock(100.0)
    leases, claim = claimed(task, clock)
    Task.drop_table()
    clock.now = 110.0
    leases.renew_all()  # logs, raises nothing
    assert claim.still_ours() and not claim.lease.lost
    clock.now = 100.0 + LEASE - STOP_MARGIN
    leases.renew_all()
    assert claim.gone()


def test_a_dropped_claim_is_no_longer_renewed(task: str) -> None:
    clock = Clock(100.0)
    leases, _ = claimed(task, clock)
    leases.drop(task)
    assert leases.held() == []
    clock.now = 110.0
    leases.renew_all()
    assert Task.get_by_id(task).lease_expires_at == 100.0 + LEASE


def test_the_renewal_thread_keeps_a_lease_while_other_threads_are_held_up(task: str) -> None:
    """Renewal is its own thread, touching only the store: a publish blocked by a broker
    alarm (here, a thread that never returns) does not delay it."""
    lease = 0.9
    leases, claim = claimed(task, time.time, lease)
    blocked_publish = threading.Event()
    threading.Thread(target=blocked_publish.wait, daemon=True).start()
    stopping = threading.Event()
    renewer = threading.Thread(target=leases.keep_renewing, args=(stopping,), daemon=True)
    renewer.start()
    try:
        deadline = time.time() + 3 * lease
        while time.time() < deadline:
            assert claim.still_ours()
            time.sleep(0.05)
        assert Task.get_by_id(task).lease_expires_at > time.time()
    finally:
        stopping.set()
        blocked_publish.set()
    renewer.join(timeout=2)
    assert not renewer.is_alive()
    # Once renewal stops, the lease stops holding before it runs out.
    time.sleep(lease)
    assert claim.gone()


PAUSE = """
- name: Wait long
  hosts: all
  gather_facts: false
  tasks:
    - name: Pause
      ansible.builtin.pause:
        seconds: 60
"""


def test_a_run_whose_claim_stops_holding_is_canceled_within_a_second(tmp_path: Path) -> None:
    ansible_dir = tmp_path / "ansible"
    (ansible_dir / "playbooks").mkdir(parents=True)
    (ansible_dir / "playbooks" / "pause.yml").write_text(PAUSE)
    (ansible_dir / "ansible.cfg").write_text((PROJECT_ROOT / "ansible.cfg").read_text())
    (ansible_dir / "roles").mkdir()
    settings = Settings(state_dir=tmp_path / "state", ansible_dir=ansible_dir)
    lost = threading.Event()
    lost_at: list[float] = []

    def on_step(step: str) -> None:
        # The claim stops holding once the run is under way.
        lost_at.append(time.monotonic())
        lost.set()

    result = PlaybookRunner(settings).run(
        ident="t-1",
        playbook="pause.yml",
        instance_id="i-1",
        extravars={},
        secrets={},
        on_step=on_step,
        cancel=lost.is_set,
        connection={"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    )
    # ansible-runner's default would look at the cancel callback every 5 s.
    assert result.canceled and len(lost_at) == 1
    assert time.monotonic() - lost_at[0] < 1.0


def test_a_lease_whose_task_ended_is_no_longer_renewed_nor_lost(task: str) -> None:
    """A run goes on a little after it recorded its task's outcome (a flow's `after`):
    renewal leaves it alone, and says nothing of a task no longer ours."""
    clock = Clock(100.0)
    leases, claim = claimed(task, clock)
    tasks.finish(task, "tm-1", 101.0, ok=True)
    claim.lease.end()
    clock.now = 102.0
    leases.renew_all()
    assert not claim.lease.lost
    assert Task.get_by_id(task).lease_expires_at is None  # as the outcome left it
