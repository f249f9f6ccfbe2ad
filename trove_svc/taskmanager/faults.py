"""Faults a user can act on: what failed, and why, in the datastore's own words.

A failed step's message often only says "could not start server"; the reason ("Address
already in use", a bad setting) is in the datastore's log. The fault carries the module's
message and the log lines the failed run wrote, secrets redacted.

The log is in the instance's directory, which is its tenant's: it is read through
`trove_svc.security.tenant_files`, never through a link, and never more than its tail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePath

from trove_svc.domain.audit import redact
from trove_svc.security import tenant_files
from trove_svc.taskmanager.runner import RunResult

LOG = logging.getLogger(__name__)

# Enough for a failure's cause above the lines a server writes while it shuts down after
# it (PostgreSQL: four after a failed recovery).
_TAIL_LINES = 20
# The words of a log line that says why something failed (PostgreSQL's FATAL and PANIC,
# MariaDB's [ERROR], Redis's "# ...").
_FAILURE_WORDS = ("FATAL", "PANIC", "[ERROR]", "ERROR:", "# ")
_DETAILS_CHARS = 4000
_TAIL_BYTES = 64 * 1024
# The log is `<instance dir>/<datastore>/<file>` (provisioning.datastore_log): its last
# three names, from the instance's directory down, are the tenant's.
_TENANT_NAMES = 3
_PORT_BUSY = ("address already in use", "port is busy", "eaddrinuse")


@dataclass(frozen=True)
class Fault:
    message: str
    details: str
    port_busy: bool


def _in_instance(path: Path) -> tuple[Path, PurePath]:
    """The log's path split where the tenant's names begin."""
    top = path.parents[min(_TENANT_NAMES, len(path.parents)) - 1]
    return top, path.relative_to(top)


def log_size(path: Path | None) -> int:
    """Where the log ends now: a later `explain` reads only what came after."""
    if path is None:
        return 0
    try:
        return tenant_files.size(*_in_instance(path))
    except OSError:
        return 0


def _new_log_lines(path: Path | None, since: int) -> list[str]:
    if path is None:
        return []
    try:
        tail = tenant_files.read_tail(*_in_instance(path), limit=_TAIL_BYTES, start=since)
    except tenant_files.UnsafeFile as exc:
        # Its tenant put something else there: the fault goes without the log's words.
        LOG.warning("the datastore's log was not read: %s", exc.strerror)
        return []
    except OSError:
        return []
    text = tail.decode(errors="replace")
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-_TAIL_LINES:]


def explain(task_id: str, result: RunResult, log: Path | None, log_since: int) -> Fault:
    """The fault of a failed run: its failed step and message, and the log's new lines."""
    lines = [redact(line)[:300] for line in _new_log_lines(log, log_since)]
    message = redact(result.describe_failure())
    if lines:
        message = f"{message} The datastore's log says: {_cause(lines)}"
    details = f"Task {task_id} ({result.status}, rc {result.rc})."
    if lines:
        details += "\n" + "\n".join(_last_that_fit(lines, _DETAILS_CHARS - len(details)))
    seen = f"{message}\n{details}".lower()
    return Fault(
        message=message[:1000],
        details=details,
        port_busy=any(marker in seen for marker in _PORT_BUSY),
    )


def _cause(lines: list[str]) -> str:
    """The last line that says why something failed; else the last line."""
    failures = [line for line in lines if any(word in line for word in _FAILURE_WORDS)]
    return (failures or lines)[-1]


def _last_that_fit(lines: list[str], room: int) -> list[str]:
    """The last of `lines` that fit in `room` characters, one newline between each."""
    kept: list[str] = []
    for line in reversed(lines):
        room -= len(line) + 1
        if room < 0:
            break
        kept.append(line)
    return kept[::-1]


def unreachable(task_id: str, host: str, result: RunResult) -> Fault:
    """The fault of a run whose host never answered: which host, and what ssh said."""
    said = redact(result.failed_message or "no answer")[:500]
    return Fault(
        message=f"Host {host} is unreachable: {said}",
        details=f"Task {task_id} ({result.status}, rc {result.rc}), step '{result.failed_step}'.",
        port_busy=False,
    )
