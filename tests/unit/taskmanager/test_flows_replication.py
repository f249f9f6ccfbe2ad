"""The flows that move writes within a replication set (promote, eject, detach, rejoin, and
the failover and rejoin that start by themselves) from their entry points, against a real SQLite
store, with the runner and the guests stood in for: each ends its task and its instances
as the happy path and each step's failure say, and a run that lost its task writes no
outcome. (`test_promote` covers a switchover that loses its task between its steps.)"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests import rows
from tests.casts import Casts
from tests.unit.taskmanager.fakes import (
    SOURCE_PORT,
    STEPS,
    Effects,
    canceled_meanwhile,
    guest_timeout,
)
from trove_svc.domain import status
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Instance, ServiceStatus, Task
from trove_svc.taskmanager import failover, replication_flows
from trove_svc.taskmanager.runner import RunResult

SOURCE, REPLICA, OTHER = "s-1", "r-1", "r-2"
FAILED_STEP = STEPS[1]
CANCELED = "Canceled: the instance is being deleted."
SUCCESSFUL = RunResult("successful", 0, "/runs/x")


def _task() -> Task:
    return Task.get_by_id("t-1")


def _instance(instance_id: str) -> Instance:
    return Instance.get_by_id(instance_id)


def _source_of(instance_id: str) -> str | None:
    return _instance(instance_id).replica_of_id


def _healthy(*instance_ids: str) -> None:
    for instance_id in instance_ids:
        ServiceStatus.create(instance=instance_id, operating_status=status.HEALTHY)


def _audit(instance_id: str, action: str) -> list[tuple[str, str]]:
    """The instance's own audit trail entries of `action`: (state, message)."""
    found = Task.select().where((Task.instance_id == instance_id) & (Task.action == action))
    return [(task.state, task.message) for task in found]


def _assert_failed(message_start: str, faulted: str) -> None:
    task = _task()
    assert task.state == TaskState.FAILED, task.message
    assert task.message.startswith(message_start), task.message
    instance = _instance(faulted)
    assert instance.status == status.ERROR
    assert instance.fault_message == task.message


def _set(effects: Effects, moving: str, moving_status: str, replicas: tuple[str, ...]) -> None:
    """A source and its replicas (all built, on ports of their own); `moving` is in
    `moving_status`."""
    for offset, instance_id in enumerate((SOURCE, *replicas)):
        rows.instance(
            id=instance_id,
            port=SOURCE_PORT + offset,
            replica_of_id=None if instance_id == SOURCE else SOURCE,
            status=moving_status if instance_id == moving else status.ACTIVE,
            created_at=offset,
        )


def _replica_at(position: int, applied: int | None = None, replica: bool = True) -> Any:
    return {
        "position": position,
        "applied": position if applied is None else applied,
        "streaming": True,
        "replica": replica,
    }


# promote (a switchover)


def _promote(effects: Effects) -> None:
    replication_flows.promote(effects.deps, effects.claim("promote", REPLICA))


def test_promote_makes_the_replica_the_source_and_the_others_follow_it(effects: Effects) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA, OTHER))
    _healthy(SOURCE, REPLICA, OTHER)
    _promote(effects)
    task = _task()
    assert task.state == TaskState.SUCCEEDED, task.message
    assert task.message.startswith("switchover: this instance is the source (position 6)")
    assert _instance(REPLICA).status == status.ACTIVE
    assert [_source_of(i) for i in (REPLICA, SOURCE, OTHER)] == [None, REPLICA, REPLICA]
    for follower in (SOURCE, OTHER):
        assert _audit(follower, "replication") == [
            (TaskState.SUCCEEDED, f"now follows {REPLICA} (a switchover)")
        ]
    # Fenced first, then the new source's files say it takes writes, then the followers.
    assert [(run.playbook, run.instance_id) for run in effects.runner.ran] == [
        ("instance_replication.yml", SOURCE),
        ("instance_replication.yml", REPLICA),
        ("instance_replication.yml", SOURCE),
        ("instance_replication.yml", OTHER),
    ]
    assert effects.runner.ran[0].extravars["postgresql_replication"] == {"fenced": True}


def test_promote_of_an_instance_no_longer_waiting_is_skipped(effects: Effects) -> None:
    _set(effects, REPLICA, status.ACTIVE, (REPLICA,))
    _promote(effects)
    assert _task().state == TaskState.SKIPPED
    assert effects.runner.ran == [] and effects.bus.asked == []


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_promote_whose_replica_does_not_answer_is_not_started(
    effects: Effects, failure: str
) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    getattr(effects.bus, failure)("replication_state", REPLICA)
    _promote(effects)
    _assert_failed("Switchover not started: replication_state on r-1: The guest agent", REPLICA)
    assert effects.runner.ran == []  # the source was never fenced
    assert _source_of(REPLICA) == SOURCE


def test_promote_whose_fence_fails_is_not_started(effects: Effects) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    effects.runner.fail("instance_replication.yml", FAILED_STEP, "cannot stop", SOURCE)
    _promote(effects)
    _assert_failed(
        f"Switchover not started: instance s-1: Step '{FAILED_STEP}' failed: cannot stop", REPLICA
    )
    assert "promote" not in effects.bus.methods()
    assert _source_of(REPLICA) == SOURCE


def test_promote_whose_replica_does_not_catch_up_gives_the_source_its_writes_back(
    effects: Effects,
) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    effects.bus.answer("replication_state", _replica_at(9), SOURCE)
    effects.bus.answer("replication_state", _replica_at(5), REPLICA)
    _promote(effects)
    _assert_failed(
        f"Switchover failed: replica r-1 did not catch up with its source within "
        f"{replication_flows.CATCH_UP_TIMEOUT:g} s (at 5, source at 9)",
        REPLICA,
    )
    assert ("promote", REPLICA) not in effects.bus.asked
    assert ("promote", SOURCE) in effects.bus.asked
    assert effects.runner.ran[-1].instance_id == SOURCE  # its files say it takes writes
    assert effects.runner.ran[-1].extravars["postgresql_replication"] == {}
    assert _source_of(REPLICA) == SOURCE


def test_promote_whose_promotion_fails_gives_the_source_its_writes_back(
    effects: Effects,
) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    effects.bus.time_out("promote", REPLICA)
    _promote(effects)
    _assert_failed("Switchover failed: promote on r-1: The guest agent did not answer", REPLICA)
    assert ("promote", SOURCE) in effects.bus.asked
    assert _source_of(REPLICA) == SOURCE


def test_promote_whose_replica_falls_silent_mid_way_leaves_the_source_fenced(
    effects: Effects,
) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    answered = []

    def answers_twice(instance_id: str, request: Any) -> Any:
        answered.append(instance_id)
        if len(answered) > 2:
            raise guest_timeout("replication_state")
        return _replica_at(5)

    effects.bus.answer("replication_state", answers_twice, REPLICA)
    effects.bus.time_out("promote", REPLICA)
    _promote(effects)
    _assert_failed("Switchover failed: promote on r-1", REPLICA)
    assert "so the source stays fenced" in _task().message
    assert ("promote", SOURCE) not in effects.bus.asked
    assert [run.instance_id for run in effects.runner.ran] == [SOURCE]


def test_promote_that_answered_late_goes_on(effects: Effects) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    states = iter([_replica_at(5), _replica_at(5)])

    def promoted_after_all(instance_id: str, request: Any) -> Any:
        return next(states, _replica_at(6, replica=False))

    effects.bus.answer("replication_state", promoted_after_all, REPLICA)
    effects.bus.time_out("promote", REPLICA)
    _promote(effects)
    assert _task().state == TaskState.SUCCEEDED, _task().message
    assert (_source_of(REPLICA), _source_of(SOURCE)) == (None, REPLICA)


def test_promote_whose_old_source_cannot_follow_faults_both(effects: Effects) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    # The fence succeeds (the source's first run); following the new source fails.
    effects.runner.script("instance_replication.yml", SUCCESSFUL, instance_id=SOURCE, times=1)
    effects.runner.fail("instance_replication.yml", FAILED_STEP, "no", SOURCE)
    _promote(effects)
    _assert_failed(f"Promoted, but: s-1: instance s-1: Step '{FAILED_STEP}' failed: no", REPLICA)
    # The records follow what the datastores are: the replica takes writes.
    assert (_source_of(REPLICA), _source_of(SOURCE)) == (None, REPLICA)
    assert _instance(SOURCE).status == status.ERROR
    ((state, _),) = _audit(SOURCE, "replication")
    assert state == TaskState.FAILED


def test_promote_canceled_before_it_started_fences_nothing(effects: Effects) -> None:
    _set(effects, REPLICA, status.PROMOTE, (REPLICA,))
    claim = effects.claim("promote", REPLICA)
    canceled_meanwhile(claim)
    replication_flows.promote(effects.deps, claim)
    task = _task()
    assert (task.state, task.owner, task.message) == (TaskState.CANCELED, None, CANCELED)
    assert effects.runner.ran == [] and effects.bus.asked == []
    assert _instance(REPLICA).status == status.PROMOTE


# eject (a failover)


def _eject(effects: Effects) -> None:
    replication_flows.eject(effects.deps, effects.claim("eject", SOURCE))


def _without_auto_rejoin(effects: Effects) -> None:
    effects.settings = dataclasses.replace(effects.settings, auto_rejoin=False)


def test_eject_promotes_the_most_advanced_replica_and_fences_the_old_source(
    effects: Effects,
) -> None:
    _without_auto_rejoin(effects)
    _set(effects, SOURCE, status.EJECT, (REPLICA, OTHER))
    _healthy(SOURCE, REPLICA, OTHER)
    effects.bus.answer("replication_state", _replica_at(5), REPLICA)
    effects.bus.answer("replication_state", _replica_at(7), OTHER)
    _eject(effects)
    task = _task()
    assert task.state == TaskState.SUCCEEDED, task.message
    assert task.message.startswith(f"failover: {OTHER} is the source (position 6)")
    assert [_source_of(i) for i in (OTHER, REPLICA, SOURCE)] == [None, OTHER, OTHER]
    ((state, message),) = _audit(OTHER, "promote")
    assert state == TaskState.SUCCEEDED and message.startswith(f"promoted in place of {SOURCE}")
    assert _audit(REPLICA, "replication") == [
        (TaskState.SUCCEEDED, f"now follows {OTHER} (a failover)")
    ]
    # The old source last: fenced, then made to follow.
    assert [run.instance_id for run in effects.runner.ran][-2:] == [SOURCE, SOURCE]
    assert effects.runner.ran[-2].extravars["postgresql_replication"] == {"fenced": True}


def test_eject_with_automatic_rejoin_leaves_the_old_source_to_rejoin(effects: Effects) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    _eject(effects)
    task = _task()
    assert task.state == TaskState.SUCCEEDED, task.message
    assert task.message.endswith(
        "this instance rejoins as its replica once its guest reports again"
    )
    assert SOURCE not in [run.instance_id for run in effects.runner.ran]
    assert (_source_of(REPLICA), _source_of(SOURCE)) == (None, REPLICA)


def test_eject_of_an_instance_no_longer_waiting_is_skipped(effects: Effects) -> None:
    _set(effects, SOURCE, status.ACTIVE, (REPLICA,))
    _eject(effects)
    assert _task().state == TaskState.SKIPPED
    assert effects.runner.ran == [] and effects.bus.asked == []


@pytest.fixture
def source_listening() -> Iterator[int]:
    """Something accepts connections on the source's port: its datastore still runs."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", SOURCE_PORT))
        listener.listen()
        yield SOURCE_PORT


def test_eject_of_a_source_that_still_listens_fences_it_first(
    effects: Effects, source_listening: int
) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    _eject(effects)
    assert _task().state == TaskState.SUCCEEDED, _task().message
    assert effects.runner.ran[0].instance_id == SOURCE
    assert effects.runner.ran[0].extravars["postgresql_replication"] == {"fenced": True}
    assert effects.bus.asked[0] == ("replication_state", REPLICA)  # after the fence


def test_eject_of_a_source_that_still_listens_and_cannot_be_fenced_is_not_started(
    effects: Effects, source_listening: int
) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    effects.runner.fail("instance_replication.yml", FAILED_STEP, "no", SOURCE)
    _eject(effects)
    _assert_failed("Failover not started: the source still listens and could not be fenced", SOURCE)
    assert "promote" not in effects.bus.methods()
    assert _source_of(REPLICA) == SOURCE


def _leased(effects: Effects, seconds_left: float) -> None:
    ServiceStatus.insert(
        instance=SOURCE,
        operating_status=status.HEALTHY,
        lease_until=effects.settings.clock() + seconds_left,
    ).on_conflict_replace().execute()


def test_eject_of_a_leased_source_waits_its_lease_out_and_asks_nothing_of_it(
    effects: Effects, source_listening: int
) -> None:
    """It listens (frozen, or cut off from the control plane) and may not answer: its
    lease made it fence itself, so the failover waits the lease out instead."""
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    _leased(effects, 4.0)
    began = effects.settings.clock()
    effects.bus.answer("replication_state", _replica_at(5), REPLICA)
    _eject(effects)
    assert _task().state == TaskState.SUCCEEDED, _task().message
    # Promoted only once the lease (and the margin) had run out.
    assert effects.settings.clock() - began >= 4.0 + replication_flows.LEASE_MARGIN
    assert SOURCE not in [run.instance_id for run in effects.runner.ran]
    assert [c for c in effects.bus.asked if c[1] == SOURCE] == []
    ((state, message),) = _audit(SOURCE, "lease")
    assert state == TaskState.SUCCEEDED and message.startswith("its lease ran out (waited 4.5 s)")


def test_eject_of_a_source_whose_lease_ran_out_long_ago_does_not_wait(effects: Effects) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    _leased(effects, -60.0)
    began = effects.settings.clock()
    _eject(effects)
    assert _task().state == TaskState.SUCCEEDED, _task().message
    assert effects.settings.clock() - began < 1.0
    assert _audit(SOURCE, "lease")[0][1].startswith("its lease ran out (waited 0.0 s)")


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_eject_with_no_replica_answering_fails(effects: Effects, failure: str) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA, OTHER))
    getattr(effects.bus, failure)("replication_state")
    _eject(effects)
    _assert_failed("Failover failed: no replica of this instance answered.", SOURCE)
    assert _source_of(REPLICA) == SOURCE and _source_of(OTHER) == SOURCE


def test_eject_whose_promotion_fails_changes_no_one_s_source(effects: Effects) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    effects.bus.fail("promote", REPLICA)
    _eject(effects)
    _assert_failed("Failover failed: promote on r-1: The guest agent failed promote", SOURCE)
    assert _source_of(REPLICA) == SOURCE


def test_eject_whose_old_source_cannot_be_fenced_says_so(effects: Effects) -> None:
    _without_auto_rejoin(effects)
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    effects.runner.fail("instance_replication.yml", FAILED_STEP, "host down", SOURCE)
    _eject(effects)
    _assert_failed(f"Failed over to {REPLICA}, but: the old source could not be fenced", SOURCE)
    assert (_source_of(REPLICA), _source_of(SOURCE)) == (None, REPLICA)


def test_eject_whose_other_replica_cannot_follow_says_so(effects: Effects) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA, OTHER))
    effects.bus.answer("replication_state", _replica_at(7), REPLICA)
    effects.runner.fail("instance_replication.yml", FAILED_STEP, "refused", OTHER)
    _eject(effects)
    _assert_failed(f"Failed over to {REPLICA}, but: {OTHER}: instance {OTHER}", SOURCE)
    assert _instance(OTHER).status == status.ERROR
    assert _source_of(REPLICA) is None


def test_eject_canceled_while_fencing_writes_no_outcome(
    effects: Effects, source_listening: int
) -> None:
    _set(effects, SOURCE, status.EJECT, (REPLICA,))
    claim = effects.claim("eject", SOURCE)
    effects.runner.during("instance_replication.yml", lambda: canceled_meanwhile(claim))
    replication_flows.eject(effects.deps, claim)
    task = _task()
    assert (task.state, task.message) == (TaskState.CANCELED, CANCELED)
    assert _instance(SOURCE).status == status.EJECT
    assert _source_of(REPLICA) == SOURCE


def test_a_failed_source_is_failed_over_by_itself(effects: Effects) -> None:
    """The task manager starts the eject (an automatic failover) and the flow runs it."""
    settings = effects.settings
    long_ago = settings.clock() - settings.failover_after - 1
    _set(effects, SOURCE, status.ACTIVE, (REPLICA,))
    Instance.update(status_since=long_ago).execute()
    ServiceStatus.create(instance=SOURCE, operating_status="SHUTDOWN", healthy_at=long_ago)
    ServiceStatus.create(
        instance=REPLICA, operating_status=status.HEALTHY, healthy_at=settings.clock()
    )
    casts = Casts()
    (task_id,) = failover.start_due(settings, casts)
    assert casts.task_ids == [task_id]
    started = Task.get_by_id(task_id)
    assert (started.action, started.requested_by) == ("eject", failover.REQUESTED_BY)
    assert _instance(SOURCE).status == status.EJECT
    Task.delete().where(Task.id == task_id).execute()  # run as the test's own task
    _eject(effects)
    assert _task().state == TaskState.SUCCEEDED, _task().message
    assert (_source_of(REPLICA), _source_of(SOURCE)) == (None, REPLICA)


# rejoin


def _failed_over(effects: Effects, heard_after: bool) -> None:
    """SOURCE was failed over to REPLICA by an eject that ended; its guest was heard since
    (or not)."""
    now = effects.settings.clock()
    _set(effects, SOURCE, status.ACTIVE, (REPLICA,))
    Instance.update(replica_of_id=None).where(Instance.id == REPLICA).execute()
    Instance.update(replica_of_id=REPLICA).where(Instance.id == SOURCE).execute()
    Task.create(
        id="t-eject",
        instance_id=SOURCE,
        project_id=_instance(SOURCE).project_id,
        action="eject",
        state=TaskState.SUCCEEDED,
        created_at=now - 20,
        finished_at=now - 10,
    )
    heard = now - 5 if heard_after else now - 15
    ServiceStatus.create(instance=SOURCE, operating_status=status.HEALTHY, last_received_at=heard)


def _rejoin(effects: Effects) -> None:
    replication_flows.rejoin(effects.deps, effects.claim("rejoin", SOURCE))


REWOUND = RunResult(
    "successful",
    0,
    "/runs/x",
    reported={
        "postgresql_rejoin": {"how": "rewound", "wal_end": "0/3000200", "diverged_at": "0/3000100"}
    },
)


def test_a_failed_over_source_heard_again_rejoins_by_itself(effects: Effects) -> None:
    _failed_over(effects, heard_after=True)
    casts = Casts()
    (task_id,) = failover.start_rejoins(effects.settings, casts)
    started = Task.get_by_id(task_id)
    assert (started.action, started.requested_by) == ("rejoin", failover.REJOINED_BY)
    assert _instance(SOURCE).status == status.REJOIN
    assert failover.start_rejoins(effects.settings, Casts()) == []  # once


def test_a_failed_over_source_not_heard_since_waits(effects: Effects) -> None:
    _failed_over(effects, heard_after=False)
    assert failover.start_rejoins(effects.settings, Casts()) == []


def test_no_automatic_rejoin_when_it_is_turned_off(effects: Effects) -> None:
    _without_auto_rejoin(effects)
    _failed_over(effects, heard_after=True)
    assert failover.start_rejoins(effects.settings, Casts()) == []


def test_rejoin_rewinds_the_old_source_and_says_what_was_discarded(effects: Effects) -> None:
    _failed_over(effects, heard_after=True)
    Instance.update(status=status.REJOIN).where(Instance.id == SOURCE).execute()
    effects.runner.script("instance_rejoin.yml", REWOUND)
    _rejoin(effects)
    task = _task()
    assert task.state == TaskState.SUCCEEDED, task.message
    done = f"rewound with pg_rewind: the WAL it wrote after {REPLICA} took over, from 0/3000100"
    assert task.message.startswith(f"rejoined: follows {REPLICA}; {done}"), task.message
    ((state, message),) = _audit(SOURCE, "rewind")
    assert state == TaskState.SUCCEEDED and message.startswith(done)
    (run,) = effects.runner.ran
    assert run.extravars["postgresql_replication"]["host"] == "127.0.0.1"
    assert _instance(SOURCE).status == status.ACTIVE


def test_rejoin_whose_run_fails_faults_the_old_source(effects: Effects) -> None:
    _failed_over(effects, heard_after=True)
    Instance.update(status=status.REJOIN).where(Instance.id == SOURCE).execute()
    effects.runner.fail("instance_rejoin.yml", FAILED_STEP, "no room")
    _rejoin(effects)
    _assert_failed(f"Rejoin failed: Step '{FAILED_STEP}' failed: no room", SOURCE)
    # Not tried again by itself.
    assert failover.start_rejoins(effects.settings, Casts()) == []


def test_rejoin_that_never_streams_faults_the_old_source(effects: Effects) -> None:
    _failed_over(effects, heard_after=True)
    Instance.update(status=status.REJOIN).where(Instance.id == SOURCE).execute()
    effects.bus.answer("replication_state", {**_replica_at(5), "streaming": False}, SOURCE)
    _rejoin(effects)
    _assert_failed(f"Rejoin failed: instance {SOURCE} does not follow {REPLICA}", SOURCE)


def test_rejoin_of_an_instance_no_longer_waiting_is_skipped(effects: Effects) -> None:
    _failed_over(effects, heard_after=True)
    _rejoin(effects)
    assert _task().state == TaskState.SKIPPED
    assert effects.runner.ran == []


# detach


def _detach(effects: Effects) -> None:
    replication_flows.detach(effects.deps, effects.claim("detach", REPLICA))


def test_detach_makes_the_replica_take_writes_on_its_own(effects: Effects) -> None:
    _set(effects, REPLICA, status.DETACH, (REPLICA,))
    _healthy(REPLICA)
    _detach(effects)
    task = _task()
    assert task.state == TaskState.SUCCEEDED, task.message
    assert task.message == f"detached from {SOURCE}: this instance takes writes on its own"
    assert _source_of(REPLICA) is None
    assert _instance(REPLICA).status == status.ACTIVE
    (run,) = effects.runner.ran
    assert (run.instance_id, run.extravars["postgresql_replication"]) == (REPLICA, {})
    assert ("remove_replication_account", SOURCE) in effects.bus.asked


def test_detach_of_an_instance_no_longer_waiting_is_skipped(effects: Effects) -> None:
    _set(effects, REPLICA, status.ACTIVE, (REPLICA,))
    _detach(effects)
    assert _task().state == TaskState.SKIPPED
    assert _source_of(REPLICA) == SOURCE


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_detach_whose_promotion_fails_keeps_the_replica_following(
    effects: Effects, failure: str
) -> None:
    _set(effects, REPLICA, status.DETACH, (REPLICA,))
    getattr(effects.bus, failure)("promote", REPLICA)
    _detach(effects)
    _assert_failed("Detach failed: promote on r-1: The guest agent", REPLICA)
    assert _source_of(REPLICA) == SOURCE
    assert effects.runner.ran == []


def test_detach_whose_files_cannot_be_written_says_so(effects: Effects) -> None:
    _set(effects, REPLICA, status.DETACH, (REPLICA,))
    effects.runner.fail("instance_replication.yml", FAILED_STEP, "read-only", REPLICA)
    _detach(effects)
    _assert_failed(f"Detached, but: instance r-1: Step '{FAILED_STEP}' failed: read-only", REPLICA)
    assert _source_of(REPLICA) is None  # it took writes all the same


def test_detach_whose_accounts_stay_still_succeeds(effects: Effects) -> None:
    _set(effects, REPLICA, status.DETACH, (REPLICA,))
    effects.bus.time_out("remove_replication_account")
    _detach(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert _source_of(REPLICA) is None


def test_detach_canceled_while_it_ran_writes_no_outcome(effects: Effects) -> None:
    _set(effects, REPLICA, status.DETACH, (REPLICA,))
    claim = effects.claim("detach", REPLICA)
    effects.runner.during("instance_replication.yml", lambda: canceled_meanwhile(claim))
    replication_flows.detach(effects.deps, claim)
    task = _task()
    assert (task.state, task.message) == (TaskState.CANCELED, CANCELED)
    assert _instance(REPLICA).status == status.DETACH
