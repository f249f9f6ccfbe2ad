"""A source's lease as its guest keeps it: the datastore takes writes only while the
control plane keeps renewing the lease, and is fenced before the lease runs out.

Each heartbeat carries a name of the guest's own (`new_beat`); the conductor answers a
source's healthy heartbeat with a grant naming it (`trove_wire.contract.LeaseGrant`),
after it recorded the lease's end in the store as *receipt* + lease. The guest counts
from when it *sent* that heartbeat, less a margin (`fence_at`), on its monotonic clock,
so its own end always comes before the store's, whatever the broker's delays. Past it
without a newer grant, it fences the datastore (`fence`: the driver's `fence_writes`),
and a watchdog process it feeds stops the server hard a little later (`stop_at`) if the
guest itself could not (`trove_guest.watchdog`). An instance never granted a lease (a
standalone one, a replica) is never fenced by it.

A fence made by the lease's lapse is undone (`resume`: the driver's `take_writes`) by the
next grant that allows it: the control plane grants only to an instance it still sees as
the source, and allows resuming only while no switchover or failover of its set is under
way; after a failover it grants no more, and the instance rejoins as a replica instead.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

LOG = logging.getLogger(__name__)

# How often the guest looks at its lease: after its processes were stopped and continued
# (SIGSTOP, a paused machine), the fence comes within this of running again.
CHECK_EVERY = 0.25
# A fence that failed is tried again after this long (the watchdog is still armed).
RETRY_EVERY = 1.0
# Heartbeats remembered for the grants that answer them (a grant for another is dropped).
BEATS_KEPT = 32
# Leases a grant may give: anything else is no grant.
LONGEST_LEASE = 3600.0


def fence_at(sent: float, lease: float) -> float:
    """When the guest fences its datastore: a quarter of the lease (at least a second)
    before the lease counted from the heartbeat's sending runs out."""
    return sent + lease - max(1.0, lease / 4)


def stop_at(sent: float, lease: float) -> float:
    """When the watchdog stops the server if the guest has not fenced it: after the
    guest's own end, still before the lease's (a tenth of it, at least half a second)."""
    return sent + lease - max(0.5, lease / 10)


class WatchdogFeed(Protocol):
    """The watchdog as the guest feeds it (`trove_guest.watchdog.WatchdogProcess`)."""

    def arm(self, deadline: float) -> None: ...

    def disarm(self) -> None: ...

    def close(self) -> None: ...


class LeaseKeeper:
    """The guest's side of its lease; `check` runs every CHECK_EVERY seconds on a thread
    of its own, `granted` on the thread that received a grant."""

    def __init__(
        self,
        fence: Callable[[], bool],
        resume: Callable[[], None],
        watchdog: WatchdogFeed,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fence = fence
        self._resume = resume
        self._watchdog = watchdog
        self._clock = clock
        # Held while the datastore is fenced or resumed (seconds, at worst): heartbeats are
        # named under a lock of their own, so they never wait for that.
        self._lock = threading.Lock()
        self._beats_lock = threading.Lock()
        self._sent: OrderedDict[str, float] = OrderedDict()
        self._deadline: float | None = None  # None: holds no lease (never, or released)
        self._granted_sent = float("-inf")  # when the heartbeat last granted was sent
        self._lapsed = False  # the lease ran out and the datastore was fenced for it
        self._undo = False  # that fence changed something, to undo when resumed
        self._retry_at = float("-inf")

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @property
    def lapsed(self) -> bool:
        return self._lapsed

    @property
    def holds(self) -> bool:
        """Whether the guest holds a lease (its heartbeats say so)."""
        return self._deadline is not None

    def new_beat(self) -> str:
        """A name for the heartbeat about to be sent, remembered with when it was sent."""
        beat = uuid.uuid4().hex
        with self._beats_lock:
            self._sent[beat] = self._clock()
            while len(self._sent) > BEATS_KEPT:
                self._sent.popitem(last=False)
        return beat

    def _sent_at(self, beat: str) -> float | None:
        with self._beats_lock:
            return self._sent.get(beat)

    def granted(self, beat: str, lease: float, resume: bool) -> bool:
        """A grant for heartbeat `beat`: the lease runs on from when it was sent. False if
        it gives nothing new (another guest's heartbeat, an old grant, a shorter lease)."""
        if not (isinstance(lease, int | float) and math.isfinite(lease)):
            return False
        if not 0 < lease <= LONGEST_LEASE:
            return False
        with self._lock:
            sent = self._sent_at(beat)
            if sent is None:
                return False
            deadline = fence_at(sent, lease)
            if deadline <= self._clock() or (
                self._deadline is not None and deadline <= self._deadline
            ):
                return False
            self._deadline = deadline
            self._granted_sent = sent
            if self._lapsed and resume:
                self._take_writes_again()
            if not self._lapsed:
                self._watchdog.arm(stop_at(sent, lease))
            return True

    def released(self, beat: str, resume: bool) -> bool:
        """The instance needs no lease any more (for heartbeat `beat`, not older than the
        last one granted): no deadline, the watchdog stands down. A fence the lapse made
        is undone if `resume` allows it, else forgotten (the control plane's to undo)."""
        with self._lock:
            sent = self._sent_at(beat)
            if self._deadline is None or sent is None or sent < self._granted_sent:
                return False
            if not self._lapsed and self._clock() >= self._deadline:
                return False  # run out, not fenced yet: fenced first, released after
            if self._lapsed and resume and not self._take_writes_again():
                return False  # still fenced and held: the next heartbeat is released again
            self._deadline = None
            self._lapsed = self._undo = False
            self._watchdog.disarm()
            LOG.info("the lease is released: this instance needs none")
            return True

    def _take_writes_again(self) -> bool:
        if self._undo:
            try:
                self._resume()
            except Exception:
                LOG.exception("the lease's fence could not be undone")
                return False
            LOG.warning("the lease's fence is undone: the datastore takes writes again")
        self._lapsed = self._undo = False
        return True

    def check(self) -> None:
        """Fence the datastore once the lease ran out unrenewed."""
        with self._lock:
            now = self._clock()
            if self._deadline is None or self._lapsed or now < self._deadline:
                return
            if now < self._retry_at:
                return
            LOG.warning("the lease ran out %.1f s ago unrenewed: fencing", now - self._deadline)
            try:
                self._undo = self._fence()
            except Exception:
                self._retry_at = now + RETRY_EVERY
                LOG.exception("the fence failed; trying again (the watchdog stays armed)")
                return
            self._lapsed = True
            self._watchdog.disarm()
            LOG.warning("fenced: the datastore takes no writes until the lease is renewed")
