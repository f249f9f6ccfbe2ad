"""A schedule every minute with retention 2: after four runs exactly the two newest backups
are kept, each prune is in the audit trail, and the restore check records its outcome.

Named to run last: its schedule starts with the suite (test_backups asks for it)."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.integration

PROJECT = "scheduled"


def _tasks(scheduled: dict[str, Any]) -> list[dict[str, Any]]:
    service = scheduled["service"]
    path = f"/v1.0/{PROJECT}/instances/{scheduled['instance']['id']}/tasks?limit=1000"
    return list(service.request("GET", path, scheduled["token"]).body["tasks"])


def _second(text: str) -> str:
    """A time shown by the API, to the second (task and backup views differ in form)."""
    return text.replace(" ", "T")[:19]


def test_a_schedule_keeps_the_newest_two_and_checks_them(scheduled: dict[str, Any]) -> None:
    service, token = scheduled["service"], scheduled["token"]
    deadline = time.monotonic() + 330
    while time.monotonic() < deadline:
        runs = [
            t
            for t in _tasks(scheduled)
            if t["action"] == "backup" and t["requested_by"] == "schedule every-minute"
        ]
        prunes = [t for t in _tasks(scheduled) if t["action"] == "delete_backup"]
        if len(runs) >= 4 and all(t["state"] != "RUNNING" for t in runs) and len(prunes) >= 2:
            break
        time.sleep(2)
    assert len(runs) >= 4 and all(t["state"] == "SUCCEEDED" for t in runs), runs
    deadline = time.monotonic() + 60
    while any(t["state"] in ("QUEUED", "RUNNING") for t in _tasks(scheduled)):
        assert time.monotonic() < deadline
        time.sleep(1)
    listed = service.request(
        "GET", f"/v1.0/{PROJECT}/instances/{scheduled['instance']['id']}/backups", token
    ).body["backups"]
    kept = [b for b in listed if b["status"] == "COMPLETED"]
    assert len(kept) == 2, listed
    # The newest two: both made after every older run had finished.
    older = sorted(runs, key=lambda t: t["created"])[:-2]
    assert all(_second(b["created"]) >= _second(t["finished"]) for b in kept for t in older)
    prunes = [t for t in _tasks(scheduled) if t["action"] == "delete_backup"]
    assert len(prunes) == len(runs) - 2 and all(t["state"] == "SUCCEEDED" for t in prunes)
    checked = [b for b in kept if b.get("verify_outcome")]
    assert checked and all(b["verify_outcome"].startswith("passed") for b in checked), kept
    # The check found the table the fixture filled, with its rows.
    assert all(b["verify_row_counts"].get("app.public.kept") == 3 for b in checked), checked
