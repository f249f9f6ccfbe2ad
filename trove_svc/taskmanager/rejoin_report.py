"""What a rejoin did to a failed-over source's data, in words for its audit trail, from
what the engine's role reported (`postgresql_rejoin`, `mariadb_rejoin`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lsn(text: str) -> int | None:
    """A PostgreSQL WAL location (`16/B374D848`) as a byte position; None if it is none."""
    high, slash, low = text.partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16) if slash else None
    except ValueError:
        return None


def _gtids(stray: list[dict[str, Any]], source_id: str) -> str:
    """MariaDB: the GTIDs of its binary log beyond the new source's (each with how many
    transactions that is, where the new source had any of that server's)."""
    if not stray:
        return f"its binary log had nothing {source_id} lacked: nothing was discarded"
    counts = [entry.get("count") for entry in stray]
    known = sum(int(count) for count in counts if count is not None)
    plural = "" if known == 1 else "s"
    many = f"{known} transaction{plural}" if None not in counts else "the transactions"
    upto = ", ".join(str(entry.get("gtid")) for entry in stray)
    return (
        f"copied afresh from {source_id}, discarding {many} it wrote after the failover "
        f"(up to GTID {upto})"
    )


def describe(report: Mapping[str, Any] | None, source_id: str) -> str:
    if not report:
        return f"its own replication caught it up with {source_id}"
    how = report.get("how")
    if "stray" in report:
        return _gtids(report["stray"], source_id)
    if how == "unchanged":
        return f"its data had not gone further than {source_id}'s: nothing was discarded"
    if how == "rewound":
        end, diverged = lsn(str(report.get("wal_end", ""))), lsn(str(report.get("diverged_at", "")))
        if end is None or diverged is None:
            return (
                "rewound with pg_rewind: what it wrote after its history and the source's "
                "diverged was discarded"
            )
        # A WAL segment switch in that range (archive_timeout, say) counts the whole rest
        # of its segment.
        return (
            f"rewound with pg_rewind: the WAL it wrote after {source_id} took over, from "
            f"{report['diverged_at']} to {report['wal_end']} ({max(0, end - diverged)} bytes), "
            "was discarded"
        )
    why = report.get("rewind_error") or "the rewind failed"
    return (
        f"it could not be rewound ({why}); copied afresh from {source_id}: all it wrote "
        "after the failover was discarded"
    )
