"""A nightly backup schedule with retention 1 and restore checks, end to end: after two
runs only the newest backup is kept, the older was pruned (in the audit trail), and each
backup's restore check found the instance's rows. (Which backups retention keeps, with
counts, ages and incremental chains, is tests/unit/test_backup_rules.py's.)

No night passes: the test runs the task manager's schedule step itself, on the
deployment's store and broker, with the injected clock set to each run's due time. The
deployment's own task manager runs each backup, its prune and its check; its own clock
never reaches the schedule's next run (03:00 UTC, hours ahead)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import psycopg
import pytest

from tests import support
from tests.deployments import store
from trove_svc.process.components import Runtime
from trove_svc.store.db import open_store
from trove_svc.store.models import database_proxy
from trove_svc.taskmanager.service import TaskManager

pytestmark = pytest.mark.integration

PROJECT = "scheduled"
PASSWORD = "Scheduled-test-pw-1"
KEPT = 1
RUNS = KEPT + 1


def _run_schedules_at(service: support.Service, now: float) -> None:
    """The task manager's schedule step, with the deployment's clock at `now`."""
    settings = dataclasses.replace(service.settings(), clock=lambda: now)
    previous = database_proxy.obj
    database = open_store(settings.effective_database_url)
    deps = Runtime.load(settings).flow_deps()
    try:
        TaskManager(deps).run_schedules()
    finally:
        deps.bus.close()
        database.close()
        database_proxy.initialize(previous)


def _next_run_at(service: support.Service, schedule_id: str) -> float:
    with store(service) as db:
        (next_run_at,) = db.execute(
            "SELECT next_run_at FROM schedule WHERE id = ?", (schedule_id,)
        ).fetchone()
    return float(next_run_at)


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))


def _tasks(service: support.Service, token: str, instance_id: str) -> list[dict[str, Any]]:
    path = f"/v1.0/{PROJECT}/instances/{instance_id}/tasks?limit=1000"
    return list(service.request("GET", path, token).body["tasks"])


def _settled_after(
    service: support.Service, token: str, instance_id: str, runs: int
) -> list[dict[str, Any]]:
    """The instance's tasks once the schedule's `runs`-th backup, its prune (if retention
    calls for one) and its restore check are all over."""
    deadline = time.monotonic() + 300
    while True:
        listed = _tasks(service, token, instance_id)
        checks = [t for t in listed if t["action"] == "verify_backup"]
        prunes = [t for t in listed if t["action"] == "delete_backup"]
        unfinished = [t for t in listed if t["state"] in ("QUEUED", "RUNNING")]
        if len(checks) == runs and len(prunes) == max(0, runs - KEPT) and not unfinished:
            return listed
        assert time.monotonic() < deadline, listed
        time.sleep(1)


def test_a_nightly_schedule_prunes_beyond_its_retention_and_checks_each_backup(
    service: support.Service,
) -> None:
    token = service.token(PROJECT)
    instance = service.create_healthy(
        token,
        PROJECT,
        "scheduled",
        datastore={"type": "postgresql"},
        databases=[{"name": "app"}],
        users=[{"name": "app", "password": PASSWORD, "databases": [{"name": "app"}]}],
    )
    # Rows for the restore checks to find.
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="app",
        password=PASSWORD,
        dbname="app",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept SELECT generate_series(1, 3)")
    schedules = f"/v1.0/{PROJECT}/instances/{instance['id']}/schedules"
    spec = {"name": "nightly", "cron": "0 3 * * *", "retention_count": KEPT, "verify": True}
    made = service.request("POST", schedules, token, {"schedule": spec})
    assert made.status == 200, made.body
    schedule_id = made.body["schedule"]["id"]

    first = _next_run_at(service, schedule_id)
    assert time.gmtime(first)[3:6] == (3, 0, 0) and first > time.time()
    nights = [first + day * 86400 for day in range(RUNS)]
    for run, night in enumerate(nights, start=1):
        # Each run moved the schedule on to the next night.
        assert _next_run_at(service, schedule_id) == night
        _run_schedules_at(service, night)
        listed = _settled_after(service, token, instance["id"], run)
    assert _next_run_at(service, schedule_id) == nights[-1] + 86400

    runs = [t for t in listed if t["action"] == "backup"]
    assert len(runs) == RUNS and all(t["state"] == "SUCCEEDED" for t in runs), runs
    assert {t["requested_by"] for t in runs} == {"schedule nightly"}
    prunes = [t for t in listed if t["action"] == "delete_backup"]
    assert [t["state"] for t in prunes] == ["SUCCEEDED"] * (RUNS - KEPT), prunes
    backups = service.request("GET", f"/v1.0/{PROJECT}/instances/{instance['id']}/backups", token)
    kept = [b for b in backups.body["backups"] if b["status"] == "COMPLETED"]
    # The newest: named after the night it was taken on.
    newest = [f"nightly {_stamp(night)}" for night in nights[-KEPT:]]
    assert sorted(b["name"] for b in kept) == newest, kept
    # Each check restored its backup and found the table the test filled, with its rows.
    assert all(b["verify_outcome"].startswith("passed") for b in kept), kept
    assert all(b["verify_row_counts"].get("app.public.kept") == 3 for b in kept), kept
    checks = [t for t in listed if t["action"] == "verify_backup"]
    assert [t["state"] for t in checks] == ["SUCCEEDED"] * RUNS, checks
    service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
    service.wait_gone(token, PROJECT, instance["id"])
