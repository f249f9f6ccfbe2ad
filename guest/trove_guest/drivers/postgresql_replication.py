"""PostgreSQL replication through psycopg: the accounts and slots replicas stream
through, where a server stands, and promotion. Part of `PostgresDriver`."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import psycopg
from psycopg import sql

from trove_guest.drivers import Invalid
from trove_guest.drivers.passwords import scram
from trove_wire.datastores.base import replication_account


class PostgresReplication:
    def _admin(self) -> contextlib.AbstractContextManager[psycopg.Connection[Any]]:
        raise NotImplementedError

    # Replication

    def add_replication_account(self, replica_id: str, password: str) -> dict[str, str]:
        """A role that may stream WAL, and a physical slot that keeps WAL until the replica
        has it (reserved now: a replica being built copies from this moment on)."""
        name = replication_account(replica_id)
        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            conn.execute(
                sql.SQL(
                    ("ALTER" if exists else "CREATE") + " ROLE {} LOGIN REPLICATION PASSWORD {}"
                ).format(sql.Identifier(name), scram(conn, password))
            )
            conn.execute(
                "SELECT pg_create_physical_replication_slot(%s, true) WHERE NOT EXISTS"
                " (SELECT 1 FROM pg_replication_slots WHERE slot_name = %s)",
                (name, name),
            )
        return {"user": name, "slot": name}

    def remove_replication_account(self, replica_id: str) -> None:
        """Drop the replica's slot (a slot left behind keeps WAL forever) and its role."""
        name = replication_account(replica_id)
        with self._admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                " WHERE slot_name = %s AND active_pid IS NOT NULL",
                (name,),
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (name,)
                ).fetchone()
                if row is None:
                    break
                if not row[0]:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
                    break
                time.sleep(0.2)
            recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if recovering and not recovering[0]:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))

    def replication_state(self) -> dict[str, Any]:
        with self._admin() as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(),"
                " pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery()"
                "   THEN GREATEST(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
                "   ELSE pg_current_wal_lsn() END, '0/0')::bigint,"
                " pg_wal_lsn_diff(COALESCE(pg_last_wal_replay_lsn(), pg_current_wal_lsn()),"
                "   '0/0')::bigint,"
                " EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')"
            ).fetchone()
        assert row is not None
        return {
            "replica": bool(row[0]),
            "position": int(row[1] or 0),
            "applied": int(row[2] or 0),
            "streaming": bool(row[3]),
        }

    def promote(self) -> dict[str, Any]:
        """pg_promote: the server replays what it received, then takes writes."""
        with self._admin() as conn:
            recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if recovering and recovering[0]:
                done = conn.execute("SELECT pg_promote(true, 60)").fetchone()
                if not done or not done[0]:
                    raise Invalid("the server did not finish its promotion within 60 s")
        return self.replication_state()
