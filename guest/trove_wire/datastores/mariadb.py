"""MariaDB: its names, binaries and guest driver."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from trove_wire.datastores.base import (
    Capabilities,
    DatastoreSpec,
    Discovered,
    identifier_rule,
    version_of,
)

ADMIN_USER = "os_admin"
ROOT_USER, ROOT_HOST = "root", "%"
SYSTEM_DATABASES = frozenset({"mysql", "information_schema", "performance_schema", "sys"})
HIDDEN_USERS = frozenset({"root", "mariadb.sys", "mysql", "PUBLIC", ADMIN_USER})


def discover() -> Discovered | None:
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
    if not server or not shutil.which("mariadb-install-db"):
        return None
    version = version_of(server, r"Ver (\d+\.\d+)")
    return Discovered(version, str(Path(server).parent)) if version else None


def binary_vars(found: Discovered) -> dict[str, Any]:
    return {"mariadb_server_bin": str(Path(found.bin_dir) / "mariadbd")}


SPEC = DatastoreSpec(
    name="mariadb",
    default_port=3306,
    capabilities=Capabilities(databases=True, users=True, root=True),
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
    parameters=(),
    log_file="mariadb.log",
    driver="trove_guest.drivers.mariadb:MariaDBDriver",
    discover=discover,
    binary_vars=binary_vars,
)
