"""What a rejoin's audit trail says was discarded, from what each engine's role reported."""

from __future__ import annotations

from typing import Any

import pytest

from trove_svc.taskmanager import rejoin_report

SOURCE = "s-2"


def test_wal_locations_are_byte_positions() -> None:
    assert rejoin_report.lsn("0/3000148") == 0x3000148
    assert rejoin_report.lsn("16/B374D848") == (0x16 << 32) + 0xB374D848
    assert rejoin_report.lsn("") is None
    assert rejoin_report.lsn("x/y") is None


@pytest.mark.parametrize(
    ("report", "says"),
    [
        (
            {"how": "rewound", "wal_end": "0/3000200", "diverged_at": "0/3000100"},
            "rewound with pg_rewind: the WAL it wrote after s-2 took over, from 0/3000100 to "
            "0/3000200 (256 bytes), was discarded",
        ),
        (
            {"how": "rewound", "wal_end": "0/3000200", "diverged_at": ""},
            "rewound with pg_rewind: what it wrote after its history and the source's "
            "diverged was discarded",
        ),
        (
            {"how": "unchanged", "wal_end": "0/3000200", "diverged_at": ""},
            "its data had not gone further than s-2's: nothing was discarded",
        ),
        (
            {"how": "copied", "rewind_error": "could not find previous WAL record"},
            "it could not be rewound (could not find previous WAL record); copied afresh "
            "from s-2: all it wrote after the failover was discarded",
        ),
        (
            {"how": "copied", "stray": [{"gtid": "0-3307-31", "count": 2}]},
            "copied afresh from s-2, discarding 2 transactions it wrote after the failover (up to "
            "GTID 0-3307-31)",
        ),
        (
            {"how": "copied", "stray": [{"gtid": "0-3307-31", "count": 1}]},
            "copied afresh from s-2, discarding 1 transaction it wrote after the failover (up to "
            "GTID 0-3307-31)",
        ),
        (
            {"how": "copied", "stray": [{"gtid": "0-3307-31", "count": None}]},
            "copied afresh from s-2, discarding the transactions it wrote after the failover "
            "(up to GTID 0-3307-31)",
        ),
        (
            {"how": "unchanged", "stray": []},
            "its binary log had nothing s-2 lacked: nothing was discarded",
        ),
        (None, "its own replication caught it up with s-2"),
    ],
)
def test_each_report_in_words(report: dict[str, Any] | None, says: str) -> None:
    assert rejoin_report.describe(report, SOURCE) == says
