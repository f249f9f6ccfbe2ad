"""The rules backups follow, against a real (SQLite) store: a guest's reports only move a
backup forward, retention never drops a backup a kept one builds on, restore times must
fall in what is covered, and schedules read cron."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import rows
from trove_svc.domain import (
    backups,
    catalog,
    errors,
    restores,
    schedules,
    strategies,
    tasks,
    wait_limits,
)
from trove_svc.domain.tasks import TaskState
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.store.db import open_store
from trove_svc.store.models import Backup, DatastoreVersion, Instance, Schedule, Task
from trove_svc.taskmanager.runner import remove_leftovers
from trove_wire import contract
from trove_wire.envelope import Context


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[None]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield
    database.close()


def _backup(backup_id: str, at: float, parent: str | None = None, **fields: Any) -> Backup:
    values: dict[str, Any] = {
        "id": backup_id,
        "name": backup_id,
        "project_id": "p1",
        "instance_id": "i-1",
        "datastore": "postgresql",
        "datastore_version": "15",
        "parent_id": parent,
        "state": "COMPLETED",
        "schedule_id": "s-1",
        "created_at": at,
        "updated_at": at,
        **fields,
    }
    return Backup.create(**values)


BACKUPS_DIR = Path("/srv/trove-svc/backups")
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def _report(**fields: Any) -> dict[str, Any]:
    return {"backup_id": "b-1", **fields}


def _made(**fields: Any) -> dict[str, Any]:
    """What a PostgreSQL guest says of a backup it made."""
    made = {
        "state": "SAVING",
        "label": "20261126-214130F",
        "tool": "pgBackRest 2.45",
        "size": 42,
        "checksum": SHA,
        "consistent_at": 1.5,
    }
    return _report(**{**made, **fields})


def _record(report: dict[str, Any], instance_id: str = "i-1", now: float = 2.0) -> bool:
    return backups.record_report(report, instance_id, now, BACKUPS_DIR)


def test_a_report_moves_a_backup_forward_and_never_back() -> None:
    _backup("b-1", 1.0, state="NEW")
    assert _record(_report(state="BUILDING"))
    assert not _record(_report(state="BUILDING"), now=3.0)
    assert _record(_made(state="COMPLETED"), now=4.0)
    assert not _record(_report(state="FAILED", message="late"), now=5.0)
    row = Backup.get_by_id("b-1")
    assert (row.state, row.size, row.checksum, row.fail_reason) == ("COMPLETED", 42, SHA, None)


def test_a_made_backup_is_saving_with_what_the_guest_made() -> None:
    """The guest says SAVING with what it made; the task manager stores it and calls it
    COMPLETED (trove_svc.taskmanager.backup_flows)."""
    _backup("b-1", 1.0, state="BUILDING")
    assert _record(_made())
    assert not _record(_report(state="BUILDING"), now=3.0)
    row = Backup.get_by_id("b-1")
    assert (row.state, row.size, row.checksum, row.tool, row.label, row.consistent_at) == (
        "SAVING",
        42,
        SHA,
        "pgBackRest 2.45",
        "20261126-214130F",
        1.5,
    )


def test_a_guest_reports_only_on_its_own_instance() -> None:
    _backup("b-1", 1.0, state="NEW")
    assert not _record(_report(state="FAILED", message="x"), instance_id="i-2")
    assert Backup.get_by_id("b-1").state == "NEW"


@pytest.mark.parametrize(
    ("datastore", "label", "where"),
    [
        ("postgresql", "20261126-214130F", BACKUPS_DIR / "i-1"),
        ("mariadb", "lsn:1234", BACKUPS_DIR / "i-1" / "b-1.xbstream.zst"),
        ("redis", "b-1", BACKUPS_DIR / "i-1" / "b-1.tar.zst"),
    ],
)
@pytest.mark.parametrize("forged", ["/", "/var/lib/trove-svc", "../..", str(BACKUPS_DIR)])
def test_a_backups_location_is_derived_whatever_its_report_says(
    datastore: str, label: str, where: Path, forged: str
) -> None:
    _backup("b-1", 1.0, state="BUILDING", datastore=datastore)
    assert _record(_made(label=label, location=forged))
    assert Backup.get_by_id("b-1").location == str(where)


@pytest.mark.parametrize(
    "forged",
    [
        {"label": "../.."},
        {"label": "20261126-214130F/../../.."},
        {"label": "/"},
        {"checksum": "not hex"},
        {"size": -1},
        {"size": 2**64},
        {"consistent_at": float("nan")},
        {"tool": "pgBackRest\x1b[2J"},
        {"state": "DELETING"},
        {"details": "everything"},
    ],
)
def test_a_report_not_of_its_shape_is_refused_and_changes_nothing(forged: dict[str, Any]) -> None:
    _backup("b-1", 1.0, state="BUILDING")
    with pytest.raises(contract.BadReport):
        _record(_made(**forged))
    row = Backup.get_by_id("b-1")
    assert (row.state, row.label, row.location, row.checksum) == ("BUILDING", None, None, None)


def test_a_mariadb_reports_binary_log_position_must_be_of_its_shape() -> None:
    _backup("b-1", 1.0, state="BUILDING", datastore="mariadb")
    escape = {"binlog_file": "../../../../etc/shadow", "binlog_position": "4"}
    with pytest.raises(contract.BadReport, match="binlog_file"):
        _record(_made(label="lsn:1234", details=escape))
    assert Backup.get_by_id("b-1").state == "BUILDING"


def test_details_the_restore_does_not_read_are_dropped() -> None:
    """What the control plane itself keeps in details (the bucket, how far the logs reach,
    the check's row counts) is never a guest's to set."""
    _backup("b-1", 1.0, state="BUILDING", datastore="mariadb")
    details = {
        "binlog_file": "mariadb-bin.000003",
        "binlog_position": 453,
        "s3": {"bucket": "someone-elses", "prefix": "x"},
        "logs_until": 1e12,
        "row_counts": {"t": 1},
        "stanza": "../..",
    }
    assert _record(_made(label="lsn:1234", details=details))
    row = Backup.get_by_id("b-1")
    assert row.details == {"binlog_file": "mariadb-bin.000003", "binlog_position": "453"}


def test_retention_keeps_the_newest_and_every_backup_they_build_on() -> None:
    _backup("full-1", 10.0)
    _backup("incr-1", 20.0, parent="full-1", kind="incremental")
    _backup("full-2", 30.0)
    _backup("incr-2", 40.0, parent="full-2", kind="incremental")
    _backup("incr-3", 50.0, parent="incr-2", kind="incremental")
    schedule = Schedule(id="s-1", retention_count=2, retention_days=None)
    dropped = schedules.beyond_retention(schedule, now=60.0)
    assert [b.id for b in dropped] == ["full-1", "incr-1"]


def test_an_incremental_schedule_keeps_its_chains_prunable() -> None:
    """With retention 2, an incremental schedule makes full, incremental, full, ... and
    after each run retention prunes down to the newest two and what they build on."""
    schedule = Schedule(
        id="s-1", instance_id="i-1", incremental=True, retention_count=2, retention_days=None
    )
    made: list[str] = []
    for run in range(6):
        incremental = schedules.next_is_incremental(schedule)
        parent = made[-1] if incremental and made else None
        _backup(f"b-{run}", float(run), parent=parent, kind="incremental" if parent else "full")
        made.append(f"b-{run}")
        for dropped in schedules.beyond_retention(schedule, now=float(run)):
            dropped.delete_instance()
    kinds = [(b.id, b.kind) for b in Backup.select().order_by(Backup.created_at)]
    assert kinds == [("b-4", "full"), ("b-5", "incremental")]
    assert not schedules.next_is_incremental(Schedule(id="s-2", instance_id="i-1"))


def test_retention_by_age() -> None:
    day = 86400.0
    _backup("old", 0.0)
    _backup("new", 9 * day)
    schedule = Schedule(id="s-1", retention_count=None, retention_days=7)
    assert [b.id for b in schedules.beyond_retention(schedule, now=10 * day)] == ["old"]


def test_a_chain_lists_the_full_backup_first_and_refuses_a_lost_parent() -> None:
    _backup("full", 1.0)
    _backup("incr", 2.0, parent="full")
    orphan = _backup("orphan", 3.0, parent="gone")
    assert [b.id for b in backups.chain(Backup.get_by_id("incr"))] == ["full", "incr"]
    with pytest.raises(errors.Conflict, match="lost its parent gone"):
        backups.chain(orphan)


def _caller(project: str = "p1") -> Caller:
    return Caller(project, Context(project=project, user="alice"))


def test_a_restore_time_outside_the_covered_range_is_refused_with_the_range() -> None:
    _backup("b-1", 1000.0, consistent_at=1000.0, details={"logs_until": 2000.0})
    settings = Settings(clock=lambda: 5000.0)
    point = {"backupRef": "b-1", "restore_time": "1970-01-01T00:50:00"}  # 3000: too late
    with pytest.raises(errors.BadRequest) as refused:
        restores.restore_source(settings, _caller(), point)
    assert "1970-01-01T00:16:40 to 1970-01-01T00:33:20" in refused.value.message
    inside = {"backupRef": "b-1", "restore_time": "1970-01-01T00:25:00Z"}
    assert restores.restore_source(settings, _caller(), inside)[1] == 1500.0


def test_a_restore_needs_the_callers_completed_backup() -> None:
    _backup("b-1", 1.0)
    _backup("b-2", 2.0, state="BUILDING")
    with pytest.raises(errors.NotFound):
        restores.restore_source(Settings(), _caller("p2"), {"backupRef": "b-1"})
    with pytest.raises(errors.Conflict, match="BUILDING"):
        restores.restore_source(Settings(), _caller(), {"backupRef": "b-2"})
    with pytest.raises(errors.BadRequest, match="ISO 8601"):
        restores.restore_source(Settings(), _caller(), {"backupRef": "b-1", "restore_time": "x"})


def test_redis_backups_cannot_restore_to_a_time() -> None:
    _backup("b-1", 1.0, datastore="redis")
    point = {"backupRef": "b-1", "restore_time": "1970-01-01T00:00:01"}
    with pytest.raises(errors.BadRequest, match="not supported for redis"):
        restores.restore_source(Settings(), _caller(), point)


def test_cron_is_read_and_a_bad_one_refused() -> None:
    assert schedules.next_run("*/5 * * * *", after=0.0) == 300.0
    with pytest.raises(errors.BadRequest, match="not cron syntax"):
        schedules.next_run("every tuesday", after=0.0)


def test_a_schedules_run_is_claimed_once() -> None:
    schedule = Schedule.create(
        id="s-1",
        instance_id="i-1",
        project_id="p1",
        name="nightly",
        cron="0 3 * * *",
        next_run_at=100.0,
        created_at=0.0,
    )
    assert [s.id for s in schedules.due(now=100.0)] == ["s-1"]
    assert schedules.claim(schedule, now=100.0)
    assert not schedules.claim(schedule, now=100.0)  # a second task manager, same run
    assert schedules.due(now=101.0) == []


def test_leftovers_of_a_run_are_removed_files_and_scratch_directories(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    (secrets / "t-1-abc").mkdir(parents=True)
    (secrets / "t-1-abc" / "pgbackrest.log").write_text("x")
    (secrets / "t-1.json").write_text("{}")
    (secrets / "t-2.json").write_text("{}")
    runs = tmp_path / "runs"
    for ident in ("t-1", "t-1-2", "t-2"):
        (runs / ident / "artifacts").mkdir(parents=True)
        (runs / ident / f"{ident}.hosts.json").write_text("{}")
    assert remove_leftovers(secrets, runs, "t-1") == 4
    assert [p.name for p in secrets.iterdir()] == ["t-2.json"]
    # The inventories go; the runs' artifacts (the audit trail's steps) stay.
    assert sorted(str(p.relative_to(runs)) for p in runs.rglob("*")) == [
        "t-1",
        "t-1-2",
        "t-1-2/artifacts",
        "t-1/artifacts",
        "t-2",
        "t-2/artifacts",
        "t-2/t-2.hosts.json",
    ]


def test_a_backup_nothing_watches_ends_failed_and_its_instance_active() -> None:
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    Instance.create(
        id="i-1",
        name="x",
        project_id="p1",
        datastore_version=DatastoreVersion.get(),
        flavor="1",
        volume_size=1,
        status="BACKUP",
        status_since=0.0,
        provisioned=True,
        created_at=0.0,
        updated_at=0.0,
    )
    _backup("b-1", 0.0, state="BUILDING")
    tasks.record("t-1", "i-1", "p1", "backup", "alice", "req-1", 0.0, {"backup_id": "b-1"})
    settings = Settings(limit_backup=100.0, cleanup_timeout=10.0, clock=lambda: 111.0)
    assert wait_limits.sweep(settings) == 1
    row = Backup.get_by_id("b-1")
    assert row.state == "FAILED" and "stayed BACKUP for more than 110 s" in row.fail_reason
    assert Instance.get_by_id("i-1").status == "ACTIVE"
    assert Task.get_by_id("t-1").state == TaskState.FAILED


def _open_task(task_id: str, action: str, backup_id: str, instance_id: str = "i-1") -> Task:
    return tasks.record(
        task_id, instance_id, "p1", action, "alice", "req-1", 0.0, {"backup_id": backup_id}
    )


def test_an_instance_deleted_mid_backup_leaves_no_backup_running_or_deleting() -> None:
    """What the instance's canceled tasks left ends: a backup not yet made FAILED saying
    why, one made and checksummed (nothing more to store) COMPLETED, one whose delete was
    canceled COMPLETED again (still there, deletable); what an open task still works on,
    what has ended, and other instances' backups stay as they are."""
    _backup("new", 1.0, state="NEW")
    _backup("building", 1.0, state="BUILDING")
    _backup("made", 1.0, state="SAVING", checksum=SHA)
    _backup("unmade", 1.0, state="SAVING")  # no checksum: not known to be whole
    _backup("deleting", 1.0, state="DELETING")
    _backup("being-deleted", 1.0, state="DELETING")
    _backup("done", 1.0, state="COMPLETED")
    _backup("failed", 1.0, state="FAILED", fail_reason="earlier")
    _backup("elsewhere", 1.0, state="BUILDING", instance_id="i-2")
    for n, backup_id in enumerate(["new", "building", "made", "unmade"]):
        _open_task(f"t-{n}", "backup", backup_id)
    _open_task("t-deleting", "delete_backup", "deleting")
    _open_task("t-other", "backup", "elsewhere", instance_id="i-2")
    tasks.end_open("i-1", 2.0, TaskState.CANCELED, "Canceled: the instance is being deleted.")
    _open_task("t-still", "delete_backup", "being-deleted")  # asked for since

    backups.settle_left_behind("i-1", 3.0, backups.INSTANCE_DELETED)

    states = {b.id: (b.state, b.fail_reason) for b in Backup.select()}
    assert states == {
        "new": ("FAILED", backups.INSTANCE_DELETED),
        "building": ("FAILED", backups.INSTANCE_DELETED),
        "made": ("COMPLETED", None),
        "unmade": ("FAILED", backups.INSTANCE_DELETED),
        "deleting": ("COMPLETED", None),
        "being-deleted": ("DELETING", None),
        "done": ("COMPLETED", None),
        "failed": ("FAILED", "earlier"),
        "elsewhere": ("BUILDING", None),
    }


def test_a_made_backup_its_strategy_copies_to_a_bucket_is_not_safe_until_copied() -> None:
    strategies.choose("p1", None, "s3", "bucket", 0.0)
    _backup("made", 1.0, state="SAVING", checksum=SHA)
    backups.settle_left_behind("i-1", 3.0, backups.INSTANCE_DELETED)
    row = Backup.get_by_id("made")
    assert (row.state, row.fail_reason) == ("FAILED", backups.INSTANCE_DELETED)


def test_only_backups_that_can_be_restored_keep_a_repository() -> None:
    assert not backups.repository_kept("i-1")
    _backup("failed", 1.0, state="FAILED")
    assert not backups.repository_kept("i-1")
    _backup("done", 2.0, state="COMPLETED")
    assert backups.repository_kept("i-1")
    assert backups.others_in_repository(Backup.get_by_id("done")) == 0
    assert backups.others_in_repository(Backup.get_by_id("failed")) == 1


def test_a_backup_whose_task_no_task_manager_took_ends_failed() -> None:
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance(status="BACKUP", status_since=95.0)
    _backup("b-1", 0.0, state="NEW")
    _open_task("t-1", "backup", "b-1")
    settings = Settings(limit_queued=60.0, clock=lambda: 100.0)
    assert wait_limits.sweep(settings) == 1
    row = Backup.get_by_id("b-1")
    assert row.state == "FAILED" and "No task manager took the backup task" in row.fail_reason
    assert Task.get_by_id("t-1").state == TaskState.FAILED


def test_the_tool_keeps_the_newest_full_backup_until_a_newer_one_or_its_repository_goes() -> None:
    """The base of a live instance's archived logs, and the newest full backup of a
    deleted instance's repository while other backups keep it; never an older full
    backup, an incremental one, or a file of its own."""
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance()
    older = _backup("b-0", 0.5, kind="full")
    newest = _backup("b-1", 1.0, kind="full", deleted_by_tenant_at=3.0)
    increment = _backup("b-2", 2.0, parent="b-1", kind="incremental")
    assert backups.kept_by_tool(older) is None
    assert backups.kept_by_tool(increment) is None
    assert backups.kept_by_tool(_backup("m-1", 5.0, instance_id="i-2", datastore="mariadb")) is None
    assert "until a newer full backup completes" in str(backups.kept_by_tool(newest))
    assert backups.released("i-1") == []
    Instance.delete().where(Instance.id == "i-1").execute()
    assert "other backups of its deleted instance" in str(backups.kept_by_tool(newest))
    Backup.delete().where(Backup.id.in_(("b-0", "b-2"))).execute()
    assert [b.id for b in backups.released("i-1")] == ["b-1"]


def test_a_newer_full_backup_frees_the_one_its_tenant_deleted() -> None:
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance()
    _backup("b-1", 1.0, kind="full", deleted_by_tenant_at=3.0)
    _backup("b-2", 2.0, kind="full", state="BUILDING")
    assert backups.released("i-1") == []  # not until the newer one completes
    Backup.update(state="COMPLETED").where(Backup.id == "b-2").execute()
    assert [b.id for b in backups.released("i-1")] == ["b-1"]
