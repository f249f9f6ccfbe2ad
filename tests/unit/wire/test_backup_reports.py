"""A guest's backup report is data, checked field by field before the control plane takes
any of it: it names no path, and each field is of its type and within its bounds (its
label and details are the datastore's to check: test_backup_naming)."""

from __future__ import annotations

from typing import Any

import pytest

from trove_wire import contract

BACKUP_ID = "0d1c7a52-58e5-4b7e-9d55-2f1f0e0c7c11"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def made(**fields: Any) -> dict[str, Any]:
    """A SAVING report as a guest makes one (arguments as they cross the bus)."""
    return {
        "backup_id": BACKUP_ID,
        "state": "SAVING",
        "label": "20261126-214130F",
        "tool": "pgBackRest 2.45",
        "size": 4_194_304,
        "checksum": SHA,
        "consistent_at": 1_795_729_290.25,
        "details": {},
        "message": None,
        **fields,
    }


def test_a_real_looking_report_is_read_whole() -> None:
    report = contract.read_backup_report(made())
    assert report == contract.BackupReport(
        backup_id=BACKUP_ID,
        state="SAVING",
        label="20261126-214130F",
        tool="pgBackRest 2.45",
        size=4_194_304,
        checksum=SHA,
        consistent_at=1_795_729_290.25,
        details={},
    )


@pytest.mark.parametrize("where", ["/", "/var/lib/trove-svc", "../..", "/tmp/x/../../etc"])
def test_a_location_in_a_report_is_ignored(where: str) -> None:
    report = contract.read_backup_report(made(location=where, repository=where))
    assert not hasattr(report, "location") and where not in repr(report)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("checksum", "not-hex"),
        ("checksum", SHA.upper()),
        ("checksum", SHA[:-1]),
        ("checksum", "sha256:" + SHA),
        ("checksum", 12),
        ("size", -1),
        ("size", 2**63),
        ("size", 10**30),
        ("size", True),
        ("size", 1.5),
        ("size", "42"),
        ("consistent_at", float("nan")),
        ("consistent_at", float("inf")),
        ("consistent_at", -1.0),
        ("consistent_at", "yesterday"),
        ("consistent_at", True),
        ("tool", "pgBackRest\n2.45"),
        ("tool", "x" * 256),
        ("tool", ""),
        ("tool", ["pgBackRest"]),
        ("label", "a\x00b"),
        ("label", "x" * 256),
        ("message", "m" * 1001),
        ("message", {"why": "x"}),
        ("details", ["binlog_file"]),
        ("state", "DELETED"),
        ("state", None),
        ("backup_id", None),
        ("backup_id", "x" * 65),
    ],
)
def test_a_field_of_the_wrong_type_or_size_is_refused_by_name(field: str, value: Any) -> None:
    with pytest.raises(contract.BadReport, match=field) as refused:
        contract.read_backup_report(made(**{field: value}))
    # The refusal is logged: it names the field and the rule, never the value.
    assert not str(value) or str(value) not in str(refused.value)


@pytest.mark.parametrize("missing", ["label", "tool", "size", "checksum", "consistent_at"])
def test_a_made_backups_report_says_what_was_made(missing: str) -> None:
    with pytest.raises(contract.BadReport, match=missing):
        contract.read_backup_report(made(**{missing: None}))


def test_progress_and_failure_reports_need_no_more_than_their_state() -> None:
    assert contract.read_backup_report({"backup_id": BACKUP_ID, "state": "BUILDING"}).size is None
    failed = contract.read_backup_report(
        {"backup_id": BACKUP_ID, "state": "FAILED", "message": "zstd failed\nhere"}
    )
    assert failed.message == "zstd failed\nhere"
