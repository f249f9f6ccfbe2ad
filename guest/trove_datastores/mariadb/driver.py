"""MariaDB through PyMySQL, as the guest's admin account over TCP.

Values (user names, hosts, passwords) are bound parameters; database names, which SQL
takes only as identifiers, are backquoted with any backquote doubled.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pymysql

from trove_datastores.base import REPLICATION_PREFIX, replication_account
from trove_datastores.mariadb.spec import ROOT_HOST, ROOT_USER
from trove_guest.drivers import ERROR, HEALTHY, SHUTDOWN, Conflict, NotFound, typed_value
from trove_wire import datastores
from trove_wire.contract import Invalid

SPEC = datastores.get("mariadb")
_CHARSET = re.compile(r"[A-Za-z0-9_]{1,64}")


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _word(value: str, what: str) -> str:
    if not _CHARSET.fullmatch(value):
        raise Invalid(f"not a valid {what}: {value!r}")
    return value


def option_values(printed: str) -> dict[str, str]:
    """`my_print_defaults` output ("--name=value" lines) as {name: value}, the name with
    underscores as the server spells its variables; the last of a name wins."""
    values: dict[str, str] = {}
    for line in printed.splitlines():
        if line.startswith("--"):
            name, _, value = line[2:].partition("=")
            values[name.replace("-", "_")] = value
    return values


# A kept connection idle for longer than this (seconds) is checked before it is used.
IDLE_CHECK = 2.0
QUIET_SESSION = "SET SESSION slow_query_log = 0, SESSION sql_log_off = 1"


class MariaDBDriver:
    def __init__(self, connection: dict[str, Any]) -> None:
        self._params = {
            "host": connection["host"],
            "port": int(connection["port"]),
            "user": connection["user"],
            "password": connection["password"],
            "connect_timeout": 3,
            "autocommit": True,
            # The admin's statements carry passwords (IDENTIFIED BY): whatever logging a
            # configuration group turns on, the server never logs this session's.
            "init_command": QUIET_SESSION,
        }
        self._local = threading.local()
        self._config_file = str(connection.get("config_file") or "")
        self._hidden = SPEC.hidden_users | {str(connection["user"]), str(connection.get("os_user"))}

    def _run(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement on the admin's connection, kept open between calls (one per
        thread) and dropped when it fails."""
        conn: pymysql.connections.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - getattr(self._local, "used", 0) > IDLE_CHECK:
            # Idle a while: the server may have ended it (a restart); find out before use.
            with contextlib.suppress(pymysql.err.Error):
                conn.ping(reconnect=False)
        if conn is None or not conn.open:
            conn = self._local.conn = pymysql.connect(**self._params)
        self._local.used = time.monotonic()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError):
            self._local.conn = None
            with contextlib.suppress(pymysql.err.Error):
                conn.close()
            raise

    def health(self) -> tuple[str, str | None]:
        try:
            self._run("SELECT 1")
        except pymysql.err.OperationalError as exc:
            return SHUTDOWN, str(exc.args[-1]) if exc.args else "no answer"
        except pymysql.err.MySQLError as exc:
            return ERROR, type(exc).__name__
        return HEALTHY, None

    # Databases

    def list_databases(self) -> list[dict[str, Any]]:
        rows = self._run(
            "SELECT schema_name, default_character_set_name, default_collation_name"
            " FROM information_schema.schemata ORDER BY schema_name"
        )
        return [
            {"name": name, "character_set": charset, "collate": collate}
            for name, charset, collate in rows
            if name not in SPEC.system_databases
        ]

    def create_databases(self, databases: list[dict[str, Any]]) -> None:
        existing = {
            name for (name,) in self._run("SELECT schema_name FROM information_schema.schemata")
        }
        for database in databases:
            if database["name"] in existing:
                raise Conflict(f"Database {database['name']!r} already exists.")
        for database in databases:
            sql = f"CREATE DATABASE {quote(database['name'])}"
            if database.get("character_set"):
                sql += f" CHARACTER SET {_word(database['character_set'], 'character set')}"
            if database.get("collate"):
                sql += f" COLLATE {_word(database['collate'], 'collation')}"
            self._run(sql)

    def _require_database(self, name: str) -> None:
        if name not in {d["name"] for d in self.list_databases()}:
            raise NotFound(f"Database {name!r} does not exist.")

    def delete_database(self, name: str) -> None:
        self._require_database(name)
        self._run(f"DROP DATABASE {quote(name)}")

    # Users

    def _accounts(self, name: str | None = None, host: str | None = None) -> list[tuple[str, str]]:
        rows = self._run(
            # Accounts of OS users (unix_socket, no password) are servers' own: a replica
            # has its source's too.
            "SELECT user, host FROM mysql.user WHERE is_role = 'N'"
            " AND plugin <> 'unix_socket' AND authentication_string <> 'invalid'"
            " AND (%s IS NULL OR user = %s) AND (%s IS NULL OR host = %s)"
            " ORDER BY user, host",
            (name, name, host, host),
        )
        return [
            (u, h)
            for u, h in rows
            if u not in self._hidden and not u.startswith(REPLICATION_PREFIX)
        ]

    def _databases_of(self, name: str, host: str) -> list[dict[str, Any]]:
        rows = self._run(
            "SELECT DISTINCT db FROM mysql.db WHERE user = %s AND host = %s ORDER BY db",
            (name, host),
        )
        return [{"name": db} for (db,) in rows]

    def _view(self, name: str, host: str) -> dict[str, Any]:
        return {"name": name, "host": host, "databases": self._databases_of(name, host)}

    def _one(self, name: str, host: str | None) -> tuple[str, str]:
        accounts = self._accounts(name, host or "%")
        if not accounts:
            raise NotFound(f"User {name}@{host or '%'} does not exist.")
        return accounts[0]

    def list_users(self) -> list[dict[str, Any]]:
        return [self._view(name, host) for name, host in self._accounts()]

    def get_user(self, name: str, host: str | None) -> dict[str, Any]:
        return self._view(*self._one(name, host))

    def create_users(self, users: list[dict[str, Any]]) -> None:
        for user in users:
            if self._accounts(user["name"], user.get("host") or "%"):
                raise Conflict(f"User {user['name']}@{user.get('host') or '%'} already exists.")
        for user in users:
            host = user.get("host") or "%"
            self._run("CREATE USER %s@%s IDENTIFIED BY %s", (user["name"], host, user["password"]))
            self._grant(user["name"], host, [d["name"] for d in user.get("databases", [])])

    def delete_user(self, name: str, host: str | None) -> None:
        self._run("DROP USER %s@%s", self._one(name, host))

    def change_passwords(self, users: list[dict[str, Any]]) -> None:
        for user in users:
            account = self._one(user["name"], user.get("host"))
            self._run("ALTER USER %s@%s IDENTIFIED BY %s", (*account, user["password"]))

    def update_user(self, name: str, host: str | None, attributes: dict[str, Any]) -> None:
        account = self._one(name, host)
        if attributes.get("password"):
            self._run("ALTER USER %s@%s IDENTIFIED BY %s", (*account, attributes["password"]))
        new_name = attributes.get("name") or account[0]
        new_host = attributes.get("host") or account[1]
        if (new_name, new_host) != account:
            self._run("RENAME USER %s@%s TO %s@%s", (*account, new_name, new_host))

    # Access

    def list_access(self, name: str, host: str | None) -> list[dict[str, Any]]:
        return self._databases_of(*self._one(name, host))

    def _grant(self, name: str, host: str, databases: list[str]) -> None:
        for database in databases:
            self._run(f"GRANT ALL PRIVILEGES ON {quote(database)}.* TO %s@%s", (name, host))

    def grant_access(self, name: str, host: str | None, databases: list[str]) -> None:
        account = self._one(name, host)
        for database in databases:
            self._require_database(database)
        self._grant(*account, databases)

    def revoke_access(self, name: str, host: str | None, database: str) -> None:
        account = self._one(name, host)
        self._require_database(database)
        self._run(f"REVOKE ALL PRIVILEGES ON {quote(database)}.* FROM %s@%s", account)

    # Root

    def enable_root(self, password: str) -> dict[str, str]:
        self._run("CREATE USER IF NOT EXISTS %s@%s", (ROOT_USER, ROOT_HOST))
        self._run("ALTER USER %s@%s IDENTIFIED BY %s", (ROOT_USER, ROOT_HOST, password))
        self._run("GRANT ALL PRIVILEGES ON *.* TO %s@%s WITH GRANT OPTION", (ROOT_USER, ROOT_HOST))
        # Everything but writing past read_only: a replica or a fenced former source stays
        # read-only for root too.
        self._run("REVOKE READ_ONLY ADMIN ON *.* FROM %s@%s", (ROOT_USER, ROOT_HOST))
        return {"name": ROOT_USER, "password": password}

    def is_root_enabled(self) -> bool:
        rows = self._run(
            "SELECT 1 FROM mysql.user WHERE user = %s AND host = %s", (ROOT_USER, ROOT_HOST)
        )
        return bool(rows)

    def disable_root(self) -> None:
        self._run("DROP USER IF EXISTS %s@%s", (ROOT_USER, ROOT_HOST))

    # Configuration

    def apply_configuration(
        self, values: dict[str, str], reset: dict[str, str] | None = None
    ) -> None:
        """SET GLOBAL each dynamic value (the role wrote them all to the server's file, for
        the next start), and each of `reset` back to what the option files now give it
        (the value the next start has), or where they give none to the server's own
        DEFAULT (it knows that better than the default it was described with)."""
        names = set(values) | set(reset or ())
        if any(name not in SPEC.tunables for name in names):
            raise Invalid("only the datastore's tunable parameters can be applied")
        for name, value in values.items():
            # A tunable's name is a plain identifier from the registry, never the caller's.
            self._run(f"SET GLOBAL {name} = %s", (typed_value(value),))
        if not reset:
            return
        base = self._option_file_values()
        for name in reset:
            if name in base:
                self._run(f"SET GLOBAL {name} = %s", (typed_value(base[name]),))
            else:
                self._run(f"SET GLOBAL {name} = DEFAULT")

    def _option_file_values(self) -> dict[str, str]:
        """The server's options as its files give them (my_print_defaults follows their
        !include lines; the last of a name wins), names spelt with underscores; none if
        the guest was not told where the files are."""
        if not self._config_file:
            return {}
        # Fixed arguments; the path is the one the guest role wrote, never a caller's.
        shown = subprocess.run(
            ["my_print_defaults", f"--defaults-file={self._config_file}", "mysqld", "mariadbd"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return option_values(shown)

    def show_configuration(self) -> dict[str, str]:
        rows = self._run(
            "SELECT LOWER(variable_name), global_value FROM information_schema.SYSTEM_VARIABLES"
            " WHERE LOWER(variable_name) IN %s",
            (sorted(SPEC.tunables),),
        )
        return {str(name): str(value) for name, value in rows}

    # Checks

    def table_row_counts(self) -> dict[str, int]:
        """Rows of every user table, as "database.table"."""
        counts: dict[str, int] = {}
        tables = self._run(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' ORDER BY 1, 2"
        )
        for schema, table in tables:
            if schema in SPEC.system_databases:
                continue
            rows = self._run(f"SELECT count(*) FROM {quote(schema)}.{quote(table)}")  # noqa: S608
            counts[f"{schema}.{table}"] = int(rows[0][0])
        return counts

    # Replication

    def add_replication_account(self, replica_id: str, password: str) -> dict[str, str]:
        """An account that may read the binary log. Made in the binary log too, so every
        replica has it: whichever becomes the source, the others' accounts are there."""
        name = replication_account(replica_id)
        self._run("CREATE OR REPLACE USER %s@'%%' IDENTIFIED BY %s", (name, password))
        self._run("GRANT REPLICATION SLAVE, SLAVE MONITOR ON *.* TO %s@'%%'", (name,))
        return {"user": name, "slot": ""}

    def remove_replication_account(self, replica_id: str) -> None:
        self._run("DROP USER IF EXISTS %s@'%%'", (replication_account(replica_id),))

    @staticmethod
    def _sequence(gtid_position: str) -> int:
        """A GTID position's transactions ("0-3306-42,1-3307-5": 47): a replica that
        applied more of its source's transactions is further ahead."""
        total = 0
        for gtid in filter(None, (part.strip() for part in gtid_position.split(","))):
            total += int(gtid.rsplit("-", 1)[-1])
        return total

    def _replica_status(self) -> dict[str, Any]:
        conn = pymysql.connect(**self._params, cursorclass=pymysql.cursors.DictCursor)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SHOW SLAVE STATUS")
                row = cursor.fetchone()
        finally:
            conn.close()
        return dict(row or {})

    def replication_state(self) -> dict[str, Any]:
        """`position`: the transactions received (a replica's relay log counts: promoted,
        it applies them first); `applied`: those in its data."""
        ((read_only, binlog_pos, slave_pos),) = self._run(
            "SELECT @@read_only, @@gtid_binlog_pos, @@gtid_slave_pos"
        )
        status = self._replica_status()
        replica = bool(status)
        applied = self._sequence(str(slave_pos if replica else binlog_pos))
        received = self._sequence(str(status.get("Gtid_IO_Pos") or "")) if replica else 0
        return {
            "replica": replica,
            "read_only": bool(read_only),
            "position": max(applied, received),
            "applied": applied,
            "streaming": status.get("Slave_IO_Running") == "Yes",
        }

    # The lease (trove_guest.lease)

    def fence_writes(self, base_dir: str) -> bool:
        """As a switchover's fence: read_only (accounts with READ_ONLY ADMIN, such as
        an enabled root, still write: stopped by the watchdog only). False if it was
        read-only already."""
        if self._read_only():
            return False
        self._run("SET GLOBAL read_only = ON")
        return True

    def take_writes(self, base_dir: str) -> None:
        """Undo the lease's fence: writable again unless it follows a source now."""
        if self._read_only() and not self._replica_status():
            self._run("SET GLOBAL read_only = OFF")

    def _read_only(self) -> bool:
        return bool(self._run("SELECT @@global.read_only")[0][0])

    @staticmethod
    def hard_stop(base_dir: str) -> tuple[Path, int]:
        """The server's pid file, and the signal that stops it at once."""
        return Path(base_dir) / "mariadbd.pid", signal.SIGKILL

    def promote(self) -> dict[str, Any]:
        """Stop receiving, let the SQL thread apply what was received, forget the source,
        take writes."""
        if self._replica_status():
            self._run("STOP SLAVE IO_THREAD")
            deadline = time.monotonic() + 60
            while True:
                status = self._replica_status()
                if status.get("Master_Log_File") == status.get(
                    "Relay_Master_Log_File"
                ) and status.get("Read_Master_Log_Pos") == status.get("Exec_Master_Log_Pos"):
                    break
                # Forgetting the source drops the relay log: never with writes unapplied.
                if status.get("Slave_SQL_Running") != "Yes":
                    raise Invalid(
                        "the replica cannot apply all it received: "
                        f"{status.get('Last_SQL_Error') or 'its SQL thread stopped'}"
                    )
                if time.monotonic() > deadline:
                    raise Invalid("the replica did not apply all it received within 60 s")
                time.sleep(0.1)
            self._run("STOP SLAVE")
            self._run("RESET SLAVE ALL")
        self._run("SET GLOBAL read_only = OFF")
        return self.replication_state()
