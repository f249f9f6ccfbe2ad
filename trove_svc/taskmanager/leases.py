"""The claims this task manager holds, renewed while their runs go on.

Every two seconds (or third of a lease, if shorter), each held claim is renewed in the
store. A claim that can no longer be renewed (the task was canceled, failed by the
watchdog, taken over) is marked lost, and its run stops. If the store cannot be reached, a
claim is marked lost before its lease would run out, so that a takeover never finds this
run still going: never two runs of one task at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import peewee

from trove_svc import tasks

LOG = logging.getLogger(__name__)


class Leases:
    def __init__(self, owner: str, lease: float, clock: Callable[[], float]) -> None:
        self.owner = owner
        self._lease = lease
        self._clock = clock
        self._held: dict[str, tuple[threading.Event, float]] = {}
        self._lock = threading.Lock()

    @property
    def renew_every(self) -> float:
        """Often enough that a canceled task's run stops within a couple of seconds."""
        return max(min(self._lease / 3, 2.0), 0.2)

    def hold(self, task_id: str) -> threading.Event:
        """Start renewing a claim just made; the event is set once it is lost."""
        lost = threading.Event()
        with self._lock:
            self._held[task_id] = (lost, self._clock() + self._lease)
        return lost

    def drop(self, task_id: str) -> None:
        with self._lock:
            self._held.pop(task_id, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def renew_all(self) -> None:
        with self._lock:
            held = dict(self._held)
        for task_id, (lost, expires_at) in held.items():
            now = self._clock()
            try:
                renewed = tasks.renew(task_id, self.owner, now, self._lease)
            except peewee.DatabaseError as exc:
                # Stop before the lease runs out: by then another may take the task over.
                if now > expires_at - self.renew_every:
                    LOG.error("cannot renew task %s (%s); stopping its run", task_id, exc)
                    lost.set()
                continue
            if renewed:
                with self._lock:
                    if task_id in self._held:
                        self._held[task_id] = (lost, now + self._lease)
            elif not lost.is_set():
                LOG.warning("task %s is no longer ours; stopping its run", task_id)
                lost.set()
