"""PostgreSQL through psycopg, as the guest's admin user over the instance's socket."""

from __future__ import annotations

from typing import Any

import psycopg

from trove_guest.drivers import ERROR, HEALTHY, SHUTDOWN

# Databases that belong to the datastore itself, never shown to users.
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})


class PostgresDriver:
    def __init__(self, connection: dict[str, Any]) -> None:
        self._params = {
            "host": connection["host"],
            "port": int(connection["port"]),
            "user": connection["user"],
            "password": connection["password"],
            "dbname": connection.get("dbname", "postgres"),
            "connect_timeout": 3,
        }

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(**self._params, autocommit=True)

    def health(self) -> tuple[str, str | None]:
        try:
            with self._connect() as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.OperationalError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
            return SHUTDOWN, message
        except psycopg.Error as exc:
            return ERROR, type(exc).__name__
        return HEALTHY, None

    def list_databases(self) -> list[dict[str, Any]]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT datname, pg_encoding_to_char(encoding), datcollate"
                " FROM pg_database WHERE datistemplate = false AND datallowconn"
                " ORDER BY datname"
            ).fetchall()
        return [
            {"name": name, "character_set": charset, "collate": collate}
            for name, charset, collate in rows
            if name not in SYSTEM_DATABASES
        ]
