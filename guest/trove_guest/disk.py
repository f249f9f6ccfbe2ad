"""How much of its volume an instance uses: the size of its data directory."""

from __future__ import annotations

import os


def used_bytes(path: str) -> int:
    """Bytes allocated under `path` (st_blocks, so sparse files count as they use disk)."""
    total = 0
    for root, _dirs, files in os.walk(path, onerror=lambda _err: None):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total
