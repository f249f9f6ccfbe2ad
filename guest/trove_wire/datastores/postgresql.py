"""PostgreSQL: its names, parameters, binaries and guest driver."""

from __future__ import annotations

import glob
import shutil
from pathlib import Path
from typing import Any

from trove_wire.datastores.base import (
    Capabilities,
    DatastoreSpec,
    Discovered,
    Parameter,
    identifier_rule,
    version_of,
)

ADMIN_USER = "os_admin"
ROOT_USER = "postgres"
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})

_IDENTIFIER = identifier_rule(
    "A-Za-z_",
    "A-Za-z0-9_",
    63,
    ("a letter or underscore", "letters, digits and underscores"),
    reserved=SYSTEM_DATABASES | {ADMIN_USER, "public"},
    prefixes=("pg_",),
)


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


def binary_vars(found: Discovered) -> dict[str, Any]:
    return {"postgresql_bin_dir": found.bin_dir, "postgresql_version": found.version}


SPEC = DatastoreSpec(
    name="postgresql",
    default_port=5432,
    capabilities=Capabilities(databases=True, users=True, root=True),
    user_rule=_IDENTIFIER,
    database_rule=_IDENTIFIER,
    system_databases=SYSTEM_DATABASES,
    hidden_users=frozenset({ADMIN_USER, ROOT_USER}),
    parameters=(
        Parameter("max_connections", "integer", True, 1, 10_000),
        Parameter("shared_buffers", "string", True),
        Parameter("work_mem", "string", False),
        Parameter("maintenance_work_mem", "string", False),
        Parameter("effective_cache_size", "string", False),
        Parameter("random_page_cost", "float", False, 0, 100),
        Parameter("statement_timeout", "integer", False, 0, 2_147_483_647),
        Parameter("log_min_duration_statement", "integer", False, -1, 2_147_483_647),
        Parameter("autovacuum", "boolean", False),
    ),
    log_file="postgresql.log",
    driver="trove_guest.drivers.postgresql:PostgresDriver",
    discover=discover,
    binary_vars=binary_vars,
)
