"""The guest's backup reports are of the shape the control plane takes: what each engine
makes, and why one failed, pass the contract's checks as they cross the bus."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

import pytest

from trove_guest.backup_runner import BackupRunner
from trove_guest.backups import BackupFailed, Made
from trove_guest.config import GuestConfig
from trove_wire import contract, datastores

BACKUP_ID = "0d1c7a52-58e5-4b7e-9d55-2f1f0e0c7c11"
MADE = {
    "postgresql": Made("20261126-214130F", "pgBackRest 2.45", 1, "a" * 64, 1.0),
    "mariadb": Made(
        "lsn:1234",
        "mariadb-backup 10.11",
        1,
        "b" * 64,
        1.0,
        {"binlog_file": "mariadb-bin.000003", "binlog_position": "453"},
    ),
    "redis": Made(BACKUP_ID, "redis 7.0.15 BGSAVE", 1, "c" * 64, 1.0),
}


class Engine:
    def __init__(self, made: Made | None, failure: Exception | None = None) -> None:
        self.made, self.failure = made, failure

    def backup(self, backup_id: str, kind: str, parent_label: str | None) -> Made:
        if self.failure is not None:
            raise self.failure
        assert self.made is not None
        return self.made

    def archive_logs(self) -> dict[str, Any]:
        return {}


def _reports(engine: Engine) -> list[dict[str, Any]]:
    sent: list[contract.BackupReport] = []
    runner = BackupRunner(cast(GuestConfig, None), lambda report: sent.append(report) or True)
    runner._back_up(engine, BACKUP_ID, "full", None)
    return [asdict(report) for report in sent]


@pytest.mark.parametrize("datastore", sorted(MADE))
def test_what_each_engine_makes_is_reported_in_the_contracts_shape(datastore: str) -> None:
    building, saving = _reports(Engine(MADE[datastore]))
    assert contract.read_backup_report(building).state == "BUILDING"
    report = contract.read_backup_report(saving)
    naming = datastores.get(datastore).backup_naming
    assert naming.label_problem(report.label, BACKUP_ID) is None
    assert naming.details_problem(report.details) is None
    assert "location" not in saving


def test_a_long_failure_is_reported_within_the_contracts_bound() -> None:
    _building, failed = _reports(Engine(None, BackupFailed("x" * 5000)))
    report = contract.read_backup_report(failed)
    assert report.state == "FAILED" and report.message == "x" * contract.MESSAGE_MAX
