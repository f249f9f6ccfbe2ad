"""How much each guest may report: a token bucket per instance.

A guest's bucket holds up to `burst` tokens and refills at `rate` a second; a report
takes one. A report that finds the bucket empty is over its guest's rate. The check costs
a dictionary look-up and some arithmetic, so the conductor makes it before it unseals
anything, and a flood costs it little.
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
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, instance_id: str) -> bool:
        """Take a token from the instance's bucket; False when it has none left."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(instance_id)
            if bucket is None:
                bucket = self._buckets[instance_id] = _Bucket(self._burst, now)
            elapsed = max(now - bucket.filled_at, 0.0)
            bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
            bucket.filled_at = now
            if bucket.tokens < 1.0:
                return False
            bucket.tokens -= 1.0
            return True

    def forget(self, instance_id: str) -> None:
        """Drop an instance's bucket (it is gone)."""
        with self._lock:
            self._buckets.pop(instance_id, None)
