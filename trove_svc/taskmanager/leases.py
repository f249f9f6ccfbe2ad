"""The claims this task manager holds, renewed in the store on a thread of their own.

Renewal touches the store only: a blocked publish (a broker alarm) or a slow schedule never
delays it. A claim that can no longer be renewed (the task was canceled, failed by the
watchdog, taken over) is marked lost. A lease that was not renewed in time stops holding a
margin before it runs out, whether or not the store can be reached: its run is canceled and
gone before another task manager may take the task over. Never two runs of one task at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import peewee

from trove_svc.domain import tasks

LOG = logging.getLogger(__name__)

# A run stops this long before its lease runs out: time for its cancel to be seen (the
# runner checks every quarter second) and its processes killed.
STOP_MARGIN = 2.0


class Lease:
    """One claim this task manager made: until when it holds, and whether it was lost."""

    def __init__(
        self, task_id: str, expires_at: float, margin: float, clock: Callable[[], float]
    ) -> None:
        self.task_id = task_id
        self.expires_at = expires_at
        self._margin = margin
        self._clock = clock
        self._lost = threading.Event()
        self._ended = threading.Event()

    def holds(self) -> bool:
        """True while the task is ours with time to spare; false once it was lost or its
        lease is within the margin of running out."""
        return not self._lost.is_set() and self._clock() < self.expires_at - self._margin

    @property
    def lost(self) -> bool:
        """The store said the task is no longer ours."""
        return self._lost.is_set()

    def renewed(self, expires_at: float) -> None:
        self.expires_at = expires_at

    def lose(self) -> None:
        self._lost.set()

    @property
    def ended(self) -> bool:
        """The task's outcome is recorded: nothing is left to renew."""
        return self._ended.is_set()

    def end(self) -> None:
        """Stop renewing: the run recorded its task's outcome (what a flow does after
        that, such as settling its instance, needs no claim)."""
        self._ended.set()


class Leases:
    def __init__(self, owner: str, lease: float, clock: Callable[[], float]) -> None:
        self.owner = owner
        self._lease = lease
        self._clock = clock
        self._held: dict[str, Lease] = {}
        self._lock = threading.Lock()

    @property
    def renew_every(self) -> float:
        """Often enough that a canceled task's run stops within a couple of seconds."""
        return max(min(self._lease / 3, 2.0), 0.2)

    @property
    def stop_margin(self) -> float:
        """How long before its lease runs out an unrenewed run stops: a short lease (a
        test's) keeps two renewals' worth of time before it."""
        return min(STOP_MARGIN, self._lease / 3)

    def hold(self, task_id: str, claimed_at: float) -> Lease:
        """Start renewing a claim made at `claimed_at` (its lease runs from then)."""
        lease = Lease(task_id, claimed_at + self._lease, self.stop_margin, self._clock)
        with self._lock:
            self._held[task_id] = lease
        return lease

    def drop(self, task_id: str) -> None:
        with self._lock:
            self._held.pop(task_id, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def renew_all(self) -> None:
        with self._lock:
            held = [lease for lease in self._held.values() if not lease.ended]
        for lease in held:
            # The lease runs from before the store is asked: a slow answer shortens it.
            now = self._clock()
            try:
                renewed = tasks.renew(lease.task_id, self.owner, now, self._lease)
            except peewee.DatabaseError as exc:
                # Nothing more to do: unrenewed, the lease stops holding before it runs out.
                LOG.error("cannot renew task %s (%s)", lease.task_id, exc)
                continue
            if renewed:
                lease.renewed(now + self._lease)
            elif not lease.lost:
                LOG.warning("task %s is no longer ours; stopping its run", lease.task_id)
                lease.lose()

    def keep_renewing(self, stopping: threading.Event) -> None:
        """Renew every held claim every `renew_every` seconds until `stopping` is set."""
        while True:
            try:
                self.renew_all()
            except Exception:
                LOG.exception("renewing leases failed; trying again")
            if stopping.wait(self.renew_every):
                return
