"""Redis: ACL users but no databases or root; its binaries and guest driver."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from trove_wire.datastores.base import (
    Capabilities,
    DatastoreSpec,
    Discovered,
    PasswordRule,
    identifier_rule,
    version_of,
)

ADMIN_USER = "os_admin"
HIDDEN_USERS = frozenset({"default", ADMIN_USER})


def discover() -> Discovered | None:
    server = shutil.which("redis-server")
    if not server:
        return None
    version = version_of(server, r"v=(\d+\.\d+)")
    # ACL users need Redis 6 or later.
    if not version or int(version.split(".")[0]) < 6:
        return None
    return Discovered(version, str(Path(server).parent))


def binary_vars(found: Discovered) -> dict[str, Any]:
    return {"redis_server_bin": str(Path(found.bin_dir) / "redis-server")}


SPEC = DatastoreSpec(
    name="redis",
    default_port=6379,
    capabilities=Capabilities(databases=False, users=True, root=False),
    user_rule=identifier_rule(
        "A-Za-z_",
        "A-Za-z0-9_-",
        64,
        ("a letter or underscore", "letters, digits, underscores and hyphens"),
        reserved=HIDDEN_USERS,
    ),
    database_rule=None,
    system_databases=frozenset(),
    hidden_users=HIDDEN_USERS,
    parameters=(),
    log_file="redis.log",
    driver="trove_guest.drivers.redis:RedisDriver",
    discover=discover,
    binary_vars=binary_vars,
    # ACL rules are words: a space or a '>' would read as the start of another rule.
    password_rule=PasswordRule(forbidden=" >"),
)
