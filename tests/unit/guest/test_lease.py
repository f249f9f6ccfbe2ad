"""The guest's side of a source's lease, on a clock the test moves: counted from the
heartbeat's sending, fenced once when it runs out unrenewed (never without a grant),
the watchdog armed behind it, and the fence undone only by a grant that allows it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from trove_guest.lease import LeaseKeeper, fence_at, stop_at

LEASE = 10.0


@dataclass
class Watchdog:
    armed: float | None = None
    feeds: list[str] = field(default_factory=list)

    def arm(self, deadline: float) -> None:
        self.armed = deadline
        self.feeds.append(f"arm {deadline}")

    def disarm(self) -> None:
        self.armed = None
        self.feeds.append("disarm")

    def close(self) -> None:
        self.disarm()


@dataclass
class Datastore:
    takes_writes: bool = True
    fences: int = 0
    resumes: int = 0
    failing: bool = False

    def fence(self) -> bool:
        if self.failing:
            raise OSError("pg_ctl failed")
        self.fences += 1
        changed, self.takes_writes = self.takes_writes, False
        return changed

    def resume(self) -> None:
        self.resumes += 1
        self.takes_writes = True


class World:
    def __init__(self) -> None:
        self.now = 1000.0
        self.datastore = Datastore()
        self.watchdog = Watchdog()
        self.keeper = LeaseKeeper(
            self.datastore.fence, self.datastore.resume, self.watchdog, clock=lambda: self.now
        )

    def run_for(self, seconds: float) -> None:
        """The guest's check, every quarter of a second."""
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + 0.25)
            self.keeper.check()

    def heartbeat_granted(self, delay: float = 0.2, resume: bool = True) -> bool:
        beat = self.keeper.new_beat()
        self.run_for(delay)
        return self.keeper.granted(beat, LEASE, resume)


@pytest.fixture
def world() -> World:
    return World()


def test_never_granted_never_fenced(world: World) -> None:
    for _ in range(10):
        world.keeper.new_beat()
    world.run_for(120)
    assert world.datastore.fences == 0 and world.watchdog.feeds == []


def test_the_lease_counts_from_the_heartbeats_sending_and_is_fenced_before_it_ends(
    world: World,
) -> None:
    sent = world.now
    assert world.heartbeat_granted(delay=2.0)  # the grant took 2 s to come
    assert world.keeper.deadline == fence_at(sent, LEASE) < sent + LEASE
    assert world.watchdog.armed == stop_at(sent, LEASE)
    assert fence_at(sent, LEASE) < stop_at(sent, LEASE) < sent + LEASE
    world.run_for(fence_at(sent, LEASE) - world.now - 0.01)
    assert world.datastore.fences == 0
    world.run_for(0.25)
    assert world.datastore.fences == 1 and not world.datastore.takes_writes
    assert world.watchdog.armed is None  # fenced: the watchdog stands down
    world.run_for(60)
    assert world.datastore.fences == 1  # once


def test_renewals_keep_it_writable(world: World) -> None:
    for _ in range(20):
        assert world.heartbeat_granted()
        world.run_for(3)
    assert world.datastore.fences == 0 and world.datastore.takes_writes


def test_grants_that_give_nothing_new_are_ignored(world: World) -> None:
    assert not world.keeper.granted("not-mine", LEASE, True)
    old = world.keeper.new_beat()
    world.run_for(1)
    assert world.heartbeat_granted()
    assert not world.keeper.granted(old, LEASE, True)  # older than the lease it has
    late = world.keeper.new_beat()
    world.run_for(LEASE)  # fenced meanwhile
    assert not world.keeper.granted(late, LEASE, True)  # would end in the past
    for lease in (0.0, -1.0, float("nan"), float("inf"), 10**9):
        assert not world.keeper.granted(world.keeper.new_beat(), lease, True)
    assert world.keeper.lapsed


def test_a_fence_is_undone_only_by_a_grant_that_allows_it(world: World) -> None:
    world.heartbeat_granted()
    world.run_for(LEASE)
    assert world.keeper.lapsed
    assert world.heartbeat_granted(resume=False)  # a switchover is under way
    assert world.keeper.lapsed and world.datastore.resumes == 0
    assert world.watchdog.armed is None  # fenced already: nothing for it to stop
    assert world.heartbeat_granted(resume=True)
    assert world.datastore.resumes == 1 and world.datastore.takes_writes
    assert not world.keeper.lapsed and world.watchdog.armed is not None


def test_a_fence_that_changed_nothing_is_not_undone(world: World) -> None:
    world.datastore.takes_writes = False  # in standby already (a switchover's fence)
    world.heartbeat_granted()
    world.run_for(LEASE)
    assert world.datastore.fences == 1
    world.heartbeat_granted()
    assert world.datastore.resumes == 0 and not world.datastore.takes_writes


def test_a_failed_fence_is_tried_again_and_the_watchdog_stays_armed(world: World) -> None:
    world.heartbeat_granted()
    armed = world.watchdog.armed
    world.datastore.failing = True
    world.run_for(LEASE)
    assert world.datastore.fences == 0 and world.watchdog.armed == armed
    world.datastore.failing = False
    world.run_for(1.0)
    assert world.datastore.fences == 1 and world.watchdog.armed is None


def test_after_being_frozen_it_fences_at_its_first_look(world: World) -> None:
    world.heartbeat_granted()
    world.now += 60  # SIGSTOP ... SIGCONT: the monotonic clock went on
    world.keeper.check()
    assert world.datastore.fences == 1


def _released(world: World, resume: bool) -> bool:
    return world.keeper.released(world.keeper.new_beat(), resume)


def test_a_released_lease_fences_nothing_and_stands_the_watchdog_down(world: World) -> None:
    world.heartbeat_granted()
    assert world.keeper.holds
    assert _released(world, resume=True)
    assert not world.keeper.holds and world.watchdog.armed is None
    world.run_for(60)
    assert world.datastore.fences == 0
    assert not _released(world, resume=True)  # nothing held: nothing to release


def test_a_failed_over_source_is_released_still_fenced(world: World) -> None:
    world.heartbeat_granted()
    world.run_for(LEASE)
    assert world.datastore.fences == 1
    assert _released(world, resume=False)  # the control plane's now: it rejoins
    assert world.datastore.resumes == 0 and not world.keeper.lapsed
    world.heartbeat_granted()  # a source again, later: nothing of the old fence is undone
    assert world.datastore.resumes == 0


def test_a_standalone_former_source_is_released_writable(world: World) -> None:
    world.heartbeat_granted()
    world.run_for(LEASE)
    assert _released(world, resume=True)
    assert world.datastore.resumes == 1 and world.datastore.takes_writes


def test_a_lease_run_out_is_fenced_before_it_is_released(world: World) -> None:
    """Frozen past its lease, then a release answers its first heartbeat before its first
    look: it still fences first (the release waits for the next heartbeat)."""
    world.heartbeat_granted()
    world.now += 60
    assert not _released(world, resume=False)
    world.keeper.check()
    assert world.datastore.fences == 1
    assert _released(world, resume=False)
    assert not world.datastore.takes_writes


def test_a_release_older_than_the_last_grant_is_ignored(world: World) -> None:
    old = world.keeper.new_beat()
    world.run_for(1)
    world.heartbeat_granted()
    assert not world.keeper.released(old, True)
    assert world.keeper.holds
