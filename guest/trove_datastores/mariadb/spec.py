"""MariaDB: its names, binaries and guest driver."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from trove_datastores import throwaway
from trove_datastores.base import (
    BackupNaming,
    Capabilities,
    DatastoreSpec,
    Discovered,
    Parameter,
    identifier_rule,
    restore_time_text,
    version_of,
)

ADMIN_USER = "os_admin"
# The server's socket, in the role's base directory (the role names it so too).
SOCKET = "mariadbd.sock"
ROOT_USER, ROOT_HOST = "root", "%"
SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
HIDDEN_USERS = frozenset({"root", "mariadb.sys", "mysql", "PUBLIC", ADMIN_USER})


def discover() -> Discovered | None:
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    if not server or not shutil.which("mariadb-install-db"):
        return None
    version = version_of(server, r"Ver (\d+\.\d+)")
    return Discovered(version, str(Path(server).parent)) if version else None


def backup_settings(base_dir: str, repository: str) -> dict[str, Any]:
    return {
        "dir": repository,
        "socket": f"{base_dir}/{SOCKET}",
        "data_dir": f"{base_dir}/data",
    }


# mariadb-backup's xbstream, compressed, one file per backup; its label is the LSN it
# reached (an incremental backup starts there). A restore to a time replays the binary
# logs from the newest backup's position on.
BACKUP_NAMING = BackupNaming(
    file_suffix=".xbstream.zst",
    label_pattern=re.compile(r"lsn:\d{1,20}"),
    details={
        "binlog_file": re.compile(r"[A-Za-z0-9_-]{1,200}\.\d{6,10}"),
        "binlog_position": re.compile(r"\d{1,20}"),
    },
)


def restore_vars(chain: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    """The full backup and each increment in order; then the binary logs from where the
    newest backup stops, up to the time asked."""
    newest = chain[-1]
    return {
        "artifacts": [backup["location"] for backup in chain],
        "binlogs_dir": str(Path(newest["location"]).parent / "binlogs"),
        "binlog_file": newest["details"].get("binlog_file") or "",
        "binlog_position": newest["details"].get("binlog_position") or 4,
        "stop_time": restore_time_text(target) if target is not None else "",
    }


# What a configuration group may set: tuning, never paths, plugins, ports or replication.
TUNABLES = frozenset(
    {
        "max_connections",
        "max_connect_errors",
        "max_allowed_packet",
        "wait_timeout",
        "interactive_timeout",
        "net_read_timeout",
        "net_write_timeout",
        "lock_wait_timeout",
        "long_query_time",
        "slow_query_log",
        "sort_buffer_size",
        "join_buffer_size",
        "read_buffer_size",
        "tmp_table_size",
        "max_heap_table_size",
        "table_open_cache",
        "thread_cache_size",
        "key_buffer_size",
        "innodb_buffer_pool_size",
        "innodb_log_file_size",
        "innodb_log_buffer_size",
        "innodb_flush_log_at_trx_commit",
        "innodb_io_capacity",
        "innodb_lock_wait_timeout",
        "innodb_file_per_table",
        "sync_binlog",
        "sql_mode",
        "character_set_server",
        "collation_server",
        "tx_isolation",
        "performance_schema",
        "max_sp_recursion_depth",
        "rpl_semi_sync_master_enabled",
        "rpl_semi_sync_master_timeout",
        "rpl_semi_sync_master_wait_point",
        "rpl_semi_sync_slave_enabled",
    }
)

_TYPES = {"BOOLEAN": "boolean", "ENUM": "enum", "SET": "set", "DOUBLE": "float"}


def describe_parameters(found: Discovered) -> list[Parameter]:
    """The tunables as `information_schema.SYSTEM_VARIABLES` of a throwaway server says."""
    import pymysql  # only the control plane describes

    with throwaway.workdir() as work:
        socket = str(work / SOCKET)
        argv = [
            str(Path(found.bin_dir) / "mariadbd"),
            "--no-defaults",
            f"--datadir={work}",
            f"--socket={socket}",
            "--skip-networking",
            "--skip-grant-tables",
            "--innodb-buffer-pool-size=16M",
            f"--log-error={work}/error.log",
        ]
        with throwaway.server(argv) as process:
            connect = lambda: pymysql.connect(unix_socket=socket, user="root")  # noqa: E731
            with throwaway.until_ready(connect, process) as conn, conn.cursor() as cursor:
                return described_by(cursor)


def described_by(cursor: Any) -> list[Parameter]:
    """The tunables as a running engine describes them (`cursor`: a PyMySQL cursor on it)."""
    cursor.execute(
        "SELECT LOWER(variable_name), variable_type, numeric_min_value,"
        " numeric_max_value, enum_value_list, read_only, default_value"
        " FROM information_schema.SYSTEM_VARIABLES"
        " WHERE LOWER(variable_name) IN %s",
        (sorted(TUNABLES),),
    )
    rows = cursor.fetchall()
    # Character sets and collations: the engine's own tables list them.
    named = {}
    for variable, (query, _hint) in _NAMED_BY_TABLE.items():
        cursor.execute(query)
        named[variable] = tuple(sorted(str(row[0]) for row in cursor.fetchall()))
    return [_with_choices(_parameter(*row), named) for row in rows]


# Strings the engine takes only from a table of its own: the query, and the form in words.
_NAMED_BY_TABLE = {
    "character_set_server": (
        "SELECT character_set_name FROM information_schema.CHARACTER_SETS",
        "a character set the engine knows (information_schema), such as utf8mb4",
    ),
    "collation_server": (
        "SELECT collation_name FROM information_schema.COLLATIONS",
        "a collation the engine knows (information_schema), such as utf8mb4_general_ci",
    ),
}


def _with_choices(parameter: Parameter, named: dict[str, tuple[str, ...]]) -> Parameter:
    if parameter.name not in named:
        return parameter
    return replace(
        parameter, choices=named[parameter.name], hint=_NAMED_BY_TABLE[parameter.name][1]
    )


def _parameter(
    name: str,
    kind: str,
    low: str | None,
    high: str | None,
    choices: str | None,
    read_only: str,
    default: str | None,
) -> Parameter:
    numeric = "INT" in kind or kind == "DOUBLE"
    number = float if kind == "DOUBLE" else int
    mapped = _TYPES.get(kind, "integer" if numeric else "string")
    if mapped in ("enum", "set") and not choices:
        mapped = "string"  # a character set or collation: the engine's tables list them
    return Parameter(
        name=name,
        type="boolean" if mapped == "enum" and choices == "OFF,ON" else mapped,
        restart_required=read_only == "YES",
        min=number(low) if numeric and low is not None else None,
        max=number(high) if numeric and high is not None else None,
        choices=tuple(choices.split(",")) if choices and mapped != "boolean" else (),
        default=default or "",
    )


def binary_vars(found: Discovered) -> dict[str, Any]:
    return {"server_bin": str(Path(found.bin_dir) / "mariadbd")}


def replica_source_files(base_dir: str) -> dict[str, Any]:
    """A replica's data is copied with mariadb-backup, through the source's socket and
    from its data directory (the role's default places for both)."""
    return {"socket": f"{base_dir}/{SOCKET}", "data_dir": f"{base_dir}/data"}


SPEC = DatastoreSpec(
    name="mariadb",
    default_port=3306,
    capabilities=Capabilities(
        databases=True,
        users=True,
        root=True,
        backups=True,
        incremental_backups=True,
        point_in_time=True,
        replicas=True,
        failover=True,
    ),
    user_rule=identifier_rule(
        "A-Za-z_",
        "A-Za-z0-9_",
        80,
        ("a letter or underscore", "letters, digits and underscores"),
        reserved=frozenset({"root", ADMIN_USER, "mysql", "mariadb.sys", "public"}),
    ),
    database_rule=identifier_rule(
        "A-Za-z_",
        "A-Za-z0-9_",
        64,
        ("a letter or underscore", "letters, digits and underscores"),
        reserved=SYSTEM_DATABASES,
    ),
    system_databases=SYSTEM_DATABASES,
    hidden_users=HIDDEN_USERS,
    tunables=TUNABLES,
    describe_parameters=describe_parameters,
    # A database's character set and collation are the server's to choose from.
    database_options={"character_set": "character_set_server", "collate": "collation_server"},
    log_file="mariadb.log",
    socket_name=SOCKET,
    config_file="my.cnf",
    driver="trove_datastores.mariadb.driver:MariaDBDriver",
    backup_engine="trove_datastores.mariadb.backup:MariaDBBackup",
    replica_source_files=replica_source_files,
    discover=discover,
    os_packages=("mariadb-server", "mariadb-backup"),
    python_driver="PyMySQL",
    binary_vars=binary_vars,
    backup_settings=backup_settings,
    restore_vars=restore_vars,
    backup_naming=BACKUP_NAMING,
)
