"""PostgreSQL through psycopg, as the guest's admin user.

Names are passed as quoted identifiers (`psycopg.sql.Identifier`) and values as bound
parameters; nothing a user sent is pasted into SQL text.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from trove_datastores.base import REPLICATION_PREFIX, replication_account
from trove_datastores.postgresql.spec import ROOT_USER, ROOT_USERS
from trove_guest.drivers import (
    ERROR,
    HEALTHY,
    SHUTDOWN,
    Conflict,
    Invalid,
    NotFound,
    same_setting,
)
from trove_guest.drivers.passwords import scram
from trove_wire import datastores

SPEC = datastores.get("postgresql")
# A kept connection idle for longer than this (seconds) is checked before it is used.
IDLE_CHECK = 2.0
# The functions pg_rewind calls on its source, granted to each replication account.
REWIND_FUNCTIONS = (
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
)
# What the lease's fence writes in standby.signal (PostgreSQL reads nothing there), so
# that only its own fence is undone; the role's standby.signal is empty.
STANDBY_SIGNAL = "standby.signal"
LEASE_FENCE_MARK = "trove-guest: fenced when its lease ran out\n"
# What the role writes for a server that follows a source.
REPLICATION_FILE = "trove-replication.conf"
# The advisory lock key the grants above are made under.
REWIND_GRANTS_LOCK = 0x7472_6F76_6572_7764  # "troverwd"


class PostgresDriver:
    def __init__(self, connection: dict[str, Any]) -> None:
        self._params = {
            "host": connection["host"],
            "port": int(connection["port"]),
            "user": connection["user"],
            "password": connection["password"],
            "dbname": connection.get("dbname", "postgres"),
            "connect_timeout": 3,
            # The admin's own changes (accounts, databases, a replica's account) are
            # streamed to standbys like any other, but never wait for one: under
            # `synchronous_standby_names` with no standby connected (a promoted replica
            # before its old source rejoins), they would wait forever, and the rejoin that
            # brings the standby back needs one of them.
            "options": "-c synchronous_commit=local",
        }
        self._admin_user = str(connection["user"])
        self._local = threading.local()

    @contextlib.contextmanager
    def _admin(self) -> Iterator[psycopg.Connection[Any]]:
        """The admin's connection to the default database, kept open between calls (a new
        one costs a password exchange each time); one per thread, dropped when it fails."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - getattr(self._local, "used", 0) > IDLE_CHECK:
            # Idle a while: the server may have ended it (a restart); find out before use.
            try:
                conn.execute("SELECT 1")
            except (psycopg.OperationalError, psycopg.InterfaceError):
                conn.close()
        if conn is None or conn.closed:
            conn = self._local.conn = self._connect()
        self._local.used = time.monotonic()
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError):
            self._local.conn = None
            conn.close()
            raise

    def _connect(self, dbname: str | None = None) -> psycopg.Connection[Any]:
        params = dict(self._params)
        if dbname:
            params["dbname"] = dbname
        return psycopg.connect(**params, autocommit=True)

    def health(self) -> tuple[str, str | None]:
        try:
            with self._admin() as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.OperationalError as exc:
            text = str(exc).strip()
            return SHUTDOWN, text.splitlines()[0] if text else "no answer"
        except psycopg.Error as exc:
            return ERROR, type(exc).__name__
        return HEALTHY, None

    # Databases

    def list_databases(self) -> list[dict[str, Any]]:
        with self._admin() as conn:
            rows = conn.execute(
                "SELECT datname, pg_encoding_to_char(encoding), datcollate"
                " FROM pg_database WHERE datistemplate = false AND datallowconn"
                " ORDER BY datname"
            ).fetchall()
        return [
            {"name": name, "character_set": charset, "collate": collate}
            for name, charset, collate in rows
            if name not in SPEC.system_databases
        ]

    def create_databases(self, databases: list[dict[str, Any]]) -> None:
        with self._admin() as conn:
            existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            for database in databases:
                if database["name"] in existing:
                    raise Conflict(f"Database {database['name']!r} already exists.")
            for database in databases:
                query = sql.SQL("CREATE DATABASE {} ENCODING {}").format(
                    sql.Identifier(database["name"]),
                    sql.Literal(database.get("character_set") or "UTF8"),
                )
                if database.get("collate"):
                    query += sql.SQL(" LC_COLLATE {} TEMPLATE template0").format(
                        sql.Literal(database["collate"])
                    )
                conn.execute(query)
                _close_to_public(conn, database["name"])

    def delete_database(self, name: str) -> None:
        self._require_database(name)
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def _require_database(self, name: str) -> None:
        if name not in {d["name"] for d in self.list_databases()}:
            raise NotFound(f"Database {name!r} does not exist.")

    # Users

    def _user_rows(self, conn: psycopg.Connection[Any], name: str | None = None) -> list[Any]:
        query = (
            "SELECT r.rolname,"
            " COALESCE(array_agg(d.datname ORDER BY d.datname)"
            "   FILTER (WHERE d.datname IS NOT NULL), '{}')"
            " FROM pg_roles r"
            " LEFT JOIN pg_database d ON d.datistemplate = false"
            "   AND d.datname <> ALL(%(system)s)"
            "   AND has_database_privilege(r.rolname, d.datname, 'CREATE')"
            " WHERE r.rolcanlogin AND r.rolname <> ALL(%(hidden)s)"
            "   AND NOT starts_with(r.rolname, %(replication)s)"
            "   AND (%(name)s::text IS NULL OR r.rolname = %(name)s)"
            " GROUP BY r.rolname ORDER BY r.rolname"
        )
        return conn.execute(
            query,
            {
                "system": list(SPEC.system_databases),
                "hidden": sorted(SPEC.hidden_users | {self._admin_user}),
                "replication": REPLICATION_PREFIX,
                "name": name,
            },
        ).fetchall()

    @staticmethod
    def _user_view(name: str, databases: list[str]) -> dict[str, Any]:
        return {"name": name, "host": "%", "databases": [{"name": d} for d in databases]}

    def list_users(self) -> list[dict[str, Any]]:
        with self._admin() as conn:
            return [self._user_view(name, dbs) for name, dbs in self._user_rows(conn)]

    def get_user(self, name: str, host: str | None = None) -> dict[str, Any]:
        with self._admin() as conn:
            rows = self._user_rows(conn, name)
        if not rows:
            raise NotFound(f"User {name!r} does not exist.")
        return self._user_view(rows[0][0], rows[0][1])

    def create_users(self, users: list[dict[str, Any]]) -> None:
        with self._admin() as conn:
            existing = {row[0] for row in conn.execute("SELECT rolname FROM pg_roles")}
            for user in users:
                if user["name"] in existing:
                    raise Conflict(f"User {user['name']!r} already exists.")
            for user in users:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(user["name"]), scram(conn, user["password"])
                    )
                )
                self._grant(conn, user["name"], [d["name"] for d in user.get("databases", [])])

    def delete_user(self, name: str, host: str | None = None) -> None:
        self.get_user(name)
        with self._admin() as conn:
            for database in [d["name"] for d in self.list_databases()]:
                with self._connect(database) as db_conn:
                    db_conn.execute(
                        sql.SQL("REASSIGN OWNED BY {} TO {}").format(
                            sql.Identifier(name), sql.Identifier(self._admin_user)
                        )
                    )
                    db_conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))

    def change_passwords(self, users: list[dict[str, Any]]) -> None:
        with self._admin() as conn:
            for user in users:
                self.get_user(user["name"])
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(user["name"]), scram(conn, user["password"])
                    )
                )

    def update_user(self, name: str, host: str | None, attributes: dict[str, Any]) -> None:
        self.get_user(name)
        with self._admin() as conn:
            if attributes.get("password"):
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(name), scram(conn, attributes["password"])
                    )
                )
            new_name = attributes.get("name")
            if new_name and new_name != name:
                conn.execute(
                    sql.SQL("ALTER ROLE {} RENAME TO {}").format(
                        sql.Identifier(name), sql.Identifier(new_name)
                    )
                )

    # Access

    def list_access(self, name: str, host: str | None = None) -> list[dict[str, Any]]:
        databases: list[dict[str, Any]] = self.get_user(name)["databases"]
        return databases

    def grant_access(self, name: str, host: str | None, databases: list[str]) -> None:
        self.get_user(name)
        for database in databases:
            self._require_database(database)
        with self._admin() as conn:
            self._grant(conn, name, databases)

    def _grant(self, conn: psycopg.Connection[Any], user: str, databases: list[str]) -> None:
        """ALL on each database (CONNECT with it: PUBLIC has none) and its public schema."""
        for database in databases:
            conn.execute(
                sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(user)
                )
            )
            with self._connect(database) as db_conn:
                db_conn.execute(
                    sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(user))
                )

    def revoke_access(self, name: str, host: str | None, database: str) -> None:
        """The user's CONNECT goes with ALL; a database made before PUBLIC lost its
        CONNECT here loses it now, or the user would still get in through PUBLIC."""
        self.get_user(name)
        self._require_database(database)
        with self._admin() as conn:
            conn.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(
                    sql.Identifier(database), sql.Identifier(name)
                )
            )
            _close_to_public(conn, database)
        with self._connect(database) as db_conn:
            db_conn.execute(
                sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(sql.Identifier(name))
            )

    # Root

    def enable_root(self, password: str) -> dict[str, str]:
        with self._admin() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (ROOT_USER,)
            ).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} SUPERUSER LOGIN PASSWORD {}").format(
                    sql.Identifier(ROOT_USER), scram(conn, password)
                )
            )
        return {"name": ROOT_USER, "password": password}

    def is_root_enabled(self) -> bool:
        with self._admin() as conn:
            return bool(self._root_logins(conn))

    def disable_root(self) -> None:
        with self._admin() as conn:
            for name in self._root_logins(conn):
                conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(name)))

    @staticmethod
    def _root_logins(conn: psycopg.Connection[Any]) -> list[str]:
        """The root accounts that may log in: `root`, and `postgres` where root was enabled
        under that name before."""
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND rolcanlogin",
            (list(ROOT_USERS),),
        ).fetchall()
        return [str(row[0]) for row in rows]

    # Configuration

    def apply_configuration(
        self, values: dict[str, str], reset: dict[str, str] | None = None
    ) -> None:
        """Reload: the role wrote the values to the server's file (the reload rereads it, so
        values taken out of it, `reset`, go back with it). Returns once the dynamic
        ones (`values`) are in effect, or after a few seconds if one never shows (a reload
        takes effect as each session next runs a command)."""
        if any(name not in SPEC.tunables for name in values):
            raise Invalid("only the datastore's tunable parameters can be applied")
        deadline = time.monotonic() + 10
        with self._admin() as conn:
            conn.execute("SELECT pg_reload_conf()")
            while values and time.monotonic() < deadline:
                shown = conn.execute(
                    "SELECT lower(name), setting FROM pg_settings WHERE lower(name) = ANY(%s)",
                    (sorted(values),),
                ).fetchall()
                if all(same_setting(setting, values[name]) for name, setting in shown):
                    return
                time.sleep(0.1)

    def show_configuration(self) -> dict[str, str]:
        with self._admin() as conn:
            rows = conn.execute(
                "SELECT lower(name), setting FROM pg_settings WHERE lower(name) = ANY(%s)",
                (sorted(SPEC.tunables),),
            ).fetchall()
        return {name: setting for name, setting in rows}

    # Checks

    def table_row_counts(self) -> dict[str, int]:
        """Rows of every user table, as "database.schema.table"."""
        counts: dict[str, int] = {}
        for database in [d["name"] for d in self.list_databases()]:
            with self._connect(database) as conn:
                tables = conn.execute(
                    "SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY 1, 2"
                ).fetchall()
                for schema, table in tables:
                    row = conn.execute(
                        sql.SQL("SELECT count(*) FROM {}.{}").format(
                            sql.Identifier(schema), sql.Identifier(table)
                        )
                    ).fetchone()
                    counts[f"{database}.{schema}.{table}"] = int(row[0]) if row else 0
        return counts

    # Replication

    def add_replication_account(self, replica_id: str, password: str) -> dict[str, str]:
        """A role that may stream WAL (and rewind from this server), and a physical slot
        that keeps WAL until the replica has it (reserved now: a replica being built copies
        from this moment on)."""
        name = replication_account(replica_id)
        with self._admin() as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            conn.execute(
                sql.SQL(
                    ("ALTER" if exists else "CREATE") + " ROLE {} LOGIN REPLICATION PASSWORD {}"
                ).format(sql.Identifier(name), scram(conn, password))
            )
            # What pg_rewind reads of a source, so a failed-over former source can be
            # rewound through this account (PostgreSQL's documented grants). Grants on one
            # function made at once by two calls collide ("tuple concurrently updated"):
            # they are made one call at a time.
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (REWIND_GRANTS_LOCK,))
                for function in REWIND_FUNCTIONS:
                    conn.execute(
                        sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(
                            sql.SQL(function), sql.Identifier(name)
                        )
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

    # The lease (trove_guest.lease)

    def fence_writes(self, base_dir: str) -> bool:
        """As a switchover's fence: the server stops (fast: every session ends) and comes
        back in standby, following nothing (standby.signal, marked as the lease's). False
        if it took no writes already. A server that will not stop in time is stopped at
        once (immediate): it refuses writes either way."""
        data = Path(base_dir) / "data"
        with contextlib.suppress(psycopg.OperationalError):
            with self._admin() as conn:
                recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if recovering and recovering[0]:
                return False
        _write_private(data / STANDBY_SIGNAL, LEASE_FENCE_MARK)
        pg_ctl = _pg_ctl(data)
        log = str(Path(base_dir) / SPEC.log_file)
        restart = [pg_ctl, "restart", "--pgdata", str(data), "--mode", "fast", f"--log={log}"]
        if _pg_ctl_ran([*restart, "--wait", "--timeout=10"]):
            return True
        _pg_ctl_ran([pg_ctl, "stop", "--pgdata", str(data), "--mode", "immediate", "--wait"])
        return True

    def take_writes(self, base_dir: str) -> None:
        """Undo the lease's fence: only a server still in standby by the lease's own
        mark, following nothing, is promoted (anything the control plane made of it
        since, it stays)."""
        data = Path(base_dir) / "data"
        try:
            marked = (data / STANDBY_SIGNAL).read_text() == LEASE_FENCE_MARK
        except OSError:
            marked = False
        if not marked or (data / REPLICATION_FILE).exists():
            return
        self.promote()

    @staticmethod
    def hard_stop(base_dir: str) -> tuple[Path, int]:
        """The server's pid file, and the signal that stops it at once (immediate
        shutdown: the postmaster ends every session first)."""
        return Path(base_dir) / "data" / "postmaster.pid", signal.SIGQUIT

    def promote(self) -> dict[str, Any]:
        """pg_promote: the server replays what it received, then takes writes. A
        checkpoint follows at once: until one ends, the control file still names the old
        timeline, and a pg_rewind of the former source against this server would find
        "no rewind required" and leave it on a history this server does not have."""
        with self._admin() as conn:
            recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if recovering and recovering[0]:
                done = conn.execute("SELECT pg_promote(true, 60)").fetchone()
                if not done or not done[0]:
                    raise Invalid("the server did not finish its promotion within 60 s")
                conn.execute("CHECKPOINT")
        return self.replication_state()


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def _pg_ctl(data: Path) -> str:
    """pg_ctl beside the server's binary, as its last start names it (postmaster.opts)."""
    opts = (data / "postmaster.opts").read_text()
    return str(Path(shlex.split(opts)[0]).with_name("pg_ctl"))


def _pg_ctl_ran(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def _close_to_public(conn: psycopg.Connection[Any], database: str) -> None:
    """PostgreSQL lets everyone (PUBLIC) connect to a new database and make temporary tables
    in it; a tenant's database lets in only the users granted it."""
    conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
