"""How much each guest may report: a token bucket per instance and kind of report.

A bucket holds up to `burst` tokens and refills at `rate` a second; a report takes one. A
report that finds its bucket empty is over its guest's rate. The check costs a dictionary
look-up and some arithmetic, so the conductor makes it before it unseals anything, and a
flood costs it little. Each kind of report (as its guest declares it, from a short fixed
list) has a bucket of its own: heartbeats by the thousand, or a backlog of them after an
outage, never take a backup's report's turn.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    filled_at: float


class ReportRate:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, instance_id: str, kind: str = "") -> bool:
        """Take a token from the bucket of the instance's reports of `kind`; False when it
        has none left."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get((instance_id, kind))
            if bucket is None:
                bucket = self._buckets[(instance_id, kind)] = _Bucket(self._burst, now)
            elapsed = max(now - bucket.filled_at, 0.0)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.filled_at = now
            if bucket.tokens < 1.0:
                return False
            bucket.tokens -= 1.0
            return True

    def forget(self, instance_id: str) -> None:
        """Drop an instance's buckets (it is gone)."""
        with self._lock:
            for key in [key for key in self._buckets if key[0] == instance_id]:
                del self._buckets[key]
