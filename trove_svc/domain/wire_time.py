"""How times look on the wire: Trove's ISO 8601 without a zone (UTC)."""

from __future__ import annotations

import time


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
