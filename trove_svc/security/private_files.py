"""Files only the service's account reads (the service key, the broker account, a join
file, a run's inputs): 0600 from their first byte, written whole or not at all (a
temporary file, then a rename), never through a link."""

from __future__ import annotations

import os
from pathlib import Path


def write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    tmp.replace(path)
