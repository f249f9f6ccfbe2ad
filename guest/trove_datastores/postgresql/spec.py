"""PostgreSQL: its names, parameters, binaries and guest driver."""

from __future__ import annotations

import glob
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from trove_datastores import throwaway
from trove_datastores.base import (
    BackupLayout,
    BackupNaming,
    Capabilities,
    DatastoreSpec,
    Discovered,
    NameRule,
    Parameter,
    identifier_rule,
    restore_time_text,
    version_of,
)

ADMIN_USER = "os_admin"
# The superuser that enabling root makes, named as Trove names it (its clients log in as
# `root`). Instances whose root was enabled before had it as `postgres`: root's show and
# disable still count that one, and no tenant may take either name.
ROOT_USER = "root"
FORMER_ROOT_USER = "postgres"
ROOT_USERS = (ROOT_USER, FORMER_ROOT_USER)
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})


def _identifier(reserved: frozenset[str]) -> NameRule:
    return identifier_rule(
        "A-Za-z_",
        "A-Za-z0-9_",
        63,
        ("a letter or underscore", "letters, digits and underscores"),
        reserved=SYSTEM_DATABASES | {ADMIN_USER, "public"} | reserved,
        prefixes=("pg_",),
    )


_DATABASE_NAME = _identifier(frozenset())
_USER_NAME = _identifier(frozenset(ROOT_USERS))


def discover() -> Discovered | None:
    """The newest PostgreSQL server whose binaries the host has."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    postgres = candidates[-1] if candidates else shutil.which("postgres")
    if not postgres:
        return None
    version = version_of(postgres, r"(\d+)(?:\.\d+)?")
    return Discovered(version, str(Path(postgres).parent)) if version else None


STANZA = "trove"
# pgBackRest's labels: a full backup's start, then a differential or incremental one's
# (20261126-214130F, 20261126-214130F_20261127-030000D).
PGBACKREST_LABEL = re.compile(r"\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?")
# pgBackRest names its sets itself; a restore needs no details beyond the set's label.
BACKUP_NAMING = BackupNaming(sets_dir=f"backup/{STANZA}", label_pattern=PGBACKREST_LABEL)


def backup_settings(base_dir: str, repository: str) -> dict[str, Any]:
    return {"dir": repository, "pgbackrest_config": f"{base_dir}/pgbackrest.conf", "stanza": STANZA}


def restore_vars(chain: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    """pgBackRest restores a set with everything it builds on: the newest is named."""
    newest = chain[-1]
    return {
        "repository": newest["location"],
        "stanza": STANZA,
        "set": newest["label"],
        "target_time": f"{restore_time_text(target)}+00" if target is not None else "",
    }


# What a configuration group may set: tuning, never paths, commands, ports or replication
# (those would let a tenant reach beyond the instance, or break what trove-svc runs).
TUNABLES = frozenset(
    {
        "max_connections",
        "shared_buffers",
        "work_mem",
        "maintenance_work_mem",
        "temp_buffers",
        "effective_cache_size",
        "random_page_cost",
        "seq_page_cost",
        "effective_io_concurrency",
        "statement_timeout",
        "lock_timeout",
        "idle_in_transaction_session_timeout",
        "log_min_duration_statement",
        "log_statement",
        "log_lock_waits",
        "track_io_timing",
        "autovacuum",
        "autovacuum_naptime",
        "autovacuum_vacuum_scale_factor",
        "autovacuum_analyze_scale_factor",
        "autovacuum_max_workers",
        "default_statistics_target",
        "checkpoint_timeout",
        "checkpoint_completion_target",
        "max_wal_size",
        "min_wal_size",
        "wal_buffers",
        "synchronous_commit",
        "max_worker_processes",
        "max_parallel_workers",
        "max_parallel_workers_per_gather",
        "default_transaction_isolation",
        "jit",
        "timezone",
        # Commits wait for a replica named here ('*': any) to have them: no loss on failover.
        "synchronous_standby_names",
    }
)

_TYPES = {
    "bool": "boolean",
    "integer": "integer",
    "real": "float",
    "string": "string",
    "enum": "enum",
}


def describe_parameters(found: Discovered) -> list[Parameter]:
    """The tunables as `pg_settings` of a throwaway cluster of this version describes
    them, and what a new database may be made with (`described_by`)."""
    import psycopg  # only the control plane describes; the guest never needs it here

    bin_dir = Path(found.bin_dir)
    with throwaway.workdir() as work:
        data = work / "data"
        throwaway.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ]
        )
        argv = [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={work}",
            "-c",
            "fsync=off",
        ]
        with throwaway.server(argv) as process:
            connect = lambda: psycopg.connect(host=str(work), user="postgres", dbname="postgres")  # noqa: E731
            with throwaway.until_ready(connect, process) as conn:
                return described_by(conn)


def described_by(conn: Any) -> list[Parameter]:
    """The rules a running engine describes (`conn`: a psycopg connection to it)."""
    rows = conn.execute(
        "SELECT lower(name), vartype, context, min_val, max_val, enumvals, unit, boot_val"
        " FROM pg_settings WHERE lower(name) = ANY(%s)",
        (sorted(TUNABLES),),
    ).fetchall()
    zones = [row[0] for row in conn.execute("SELECT name FROM pg_timezone_names")]
    locales = conn.execute(LOCALES_QUERY).fetchall()
    return [_with_form(_parameter(*row), zones) for row in rows] + database_rules(locales)


# The locales the engine knows, each with its encoding ('' for C and POSIX, which go with
# any): those of the host that initdb found, as LC_COLLATE takes them (ICU's collations
# and SQL-level names such as ucs_basic are no locale to it).
LOCALES_QUERY = (
    "SELECT DISTINCT collcollate, pg_encoding_to_char(collencoding) FROM pg_collation"
    " WHERE collprovider = 'c' AND collcollate IS NOT NULL"
)


def database_rules(locales: list[tuple[str, str]]) -> list[Parameter]:
    """What CREATE DATABASE takes as its ENCODING and LC_COLLATE (the guest's and the
    role's `character_set` and `collate`), from the engine's locales (`LOCALES_QUERY`).

    An encoding must match the locale a database is made with, so only the encodings of
    the engine's locales can be had. A locale name is matched exactly, case and all:
    the C library tells c.utf8 from C.utf8, and refuses the one it does not know."""
    encodings = sorted({encoding for _, encoding in locales if encoding})
    names = sorted({name for name, _ in locales})
    return [
        Parameter(
            name="server_encoding",
            type="string",
            restart_required=True,
            choices=tuple(encodings),
            hint="an encoding of a locale the engine knows (pg_collation), such as UTF8",
        ),
        Parameter(
            name="lc_collate",
            type="string",
            restart_required=True,
            pattern="(?-i:" + "|".join(re.escape(name) for name in names) + ")",
            hint=f"a locale the engine knows (pg_collation): {', '.join(names[:12])}"
            + (", ..." if len(names) > 12 else ""),
        ),
    ]


# synchronous_standby_names: names (or *), alone or as FIRST n (...) / ANY n (...).
_STANDBY = r"(?:\*|[a-z_][a-z0-9_]*)"
_STANDBYS = rf"{_STANDBY}(?:\s*,\s*{_STANDBY})*"
_SYNCHRONOUS_STANDBY_NAMES = (
    rf"\s*(?:|{_STANDBYS}|(?:(?:first|any)\s+)?\d+\s*\(\s*{_STANDBYS}\s*\))\s*"
)


def _with_form(parameter: Parameter, zones: list[str]) -> Parameter:
    """Strings the engine takes only in a form of its own get that form: a time zone from
    the engine's own list, standby names in their grammar."""
    if parameter.name == "timezone":
        return replace(
            parameter,
            choices=tuple(sorted(zones)),
            hint="a time zone the engine knows (pg_timezone_names), such as UTC",
        )
    if parameter.name == "synchronous_standby_names":
        return replace(
            parameter,
            pattern=_SYNCHRONOUS_STANDBY_NAMES,
            hint="standby names or *, alone or as FIRST n (...) or ANY n (...)",
        )
    return parameter


def _parameter(
    name: str,
    vartype: str,
    context: str,
    low: str | None,
    high: str | None,
    choices: list[str] | None,
    unit: str | None,
    default: str | None,
) -> Parameter:
    kind = _TYPES.get(vartype, "string")
    number = int if kind == "integer" else float
    return Parameter(
        name=name,
        type=kind,
        restart_required=context == "postmaster",
        min=number(low) if low is not None and kind in ("integer", "float") else None,
        max=number(high) if high is not None and kind in ("integer", "float") else None,
        choices=tuple(choices or ()),
        unit=unit or "",
        default=default or "",
    )


# The server's own defaults for the hot-standby settings the role leaves alone.
_ENGINE_HOT_STANDBY = {
    "max_wal_senders": 10,
    "max_prepared_transactions": 0,
    "max_locks_per_transaction": 64,
}


def hot_standby_settings(vcpus: int) -> dict[str, int]:
    """What a standby must hold at least as high as its primary ("max_connections = 100 is
    a lower setting than on the primary server"), as templates/postgresql.conf.j2 of the
    role writes it for a flavor of `vcpus`, or the engine's default where it writes none."""
    return {
        "max_connections": 100,
        "max_worker_processes": max(vcpus, 2) * 2,
        **_ENGINE_HOT_STANDBY,
    }


def binary_vars(found: Discovered) -> dict[str, Any]:
    return {"bin_dir": found.bin_dir, "version": found.version}


SPEC = DatastoreSpec(
    name="postgresql",
    default_port=5432,
    capabilities=Capabilities(
        databases=True,
        users=True,
        root=True,
        backups=True,
        incremental_backups=True,
        differential_backups=True,
        point_in_time=True,
        backup_layout=BackupLayout.REPOSITORY,
        replicas=True,
        failover=True,
    ),
    user_rule=_USER_NAME,
    database_rule=_DATABASE_NAME,
    system_databases=SYSTEM_DATABASES,
    hidden_users=frozenset({ADMIN_USER, *ROOT_USERS}),
    tunables=TUNABLES,
    describe_parameters=describe_parameters,
    database_options={"character_set": "server_encoding", "collate": "lc_collate"},
    reload_rereads_file=True,
    admin_over_socket=True,
    admits_replicas_by_address=True,
    log_file="postgresql.log",
    socket_name=".s.PGSQL.65535",  # .s.PGSQL.<port>
    driver="trove_datastores.postgresql.driver:PostgresDriver",
    backup_engine="trove_datastores.postgresql.backup:PgBackRest",
    discover=discover,
    os_packages=("postgresql", "postgresql-client", "pgbackrest"),
    python_driver="psycopg",
    binary_vars=binary_vars,
    backup_settings=backup_settings,
    restore_vars=restore_vars,
    backup_naming=BACKUP_NAMING,
    hot_standby_settings=hot_standby_settings,
)
