"""The rules each datastore sets for the names of databases and users.

Names are checked here before they reach a datastore, and the datastore's own driver
still passes them as quoted identifiers or bound parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trove_svc.errors import BadRequest


@dataclass(frozen=True)
class NameRule:
    pattern: re.Pattern[str]
    description: str
    reserved: frozenset[str] = frozenset()
    reserved_prefixes: tuple[str, ...] = ()

    def check(self, kind: str, name: str) -> None:
        if not isinstance(name, str) or not self.pattern.fullmatch(name):
            raise BadRequest(f"{kind} name {name!r} is not valid: {self.description}.")
        lowered = name.lower()
        if lowered in self.reserved or lowered.startswith(self.reserved_prefixes):
            raise BadRequest(f"{kind} name {name!r} is reserved by the datastore.")


_PG_IDENTIFIER = NameRule(
    re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}"),
    "it must start with a letter or underscore, hold only letters, digits and "
    "underscores, and be at most 63 characters",
    reserved=frozenset({"postgres", "template0", "template1", "os_admin", "public"}),
    reserved_prefixes=("pg_",),
)

_MARIADB_DATABASE = NameRule(
    re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}"),
    "it must start with a letter or underscore, hold only letters, digits and "
    "underscores, and be at most 64 characters",
    reserved=frozenset({"mysql", "information_schema", "performance_schema", "sys"}),
)
_MARIADB_USER = NameRule(
    re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,79}"),
    "it must start with a letter or underscore, hold only letters, digits and "
    "underscores, and be at most 80 characters",
    reserved=frozenset({"root", "os_admin", "mysql", "mariadb.sys", "public"}),
)
_REDIS_USER = NameRule(
    re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}"),
    "it must start with a letter or underscore, hold only letters, digits, underscores "
    "and hyphens, and be at most 64 characters",
    reserved=frozenset({"default", "os_admin"}),
)

# A datastore missing from DATABASE_RULES has no databases (Redis).
DATABASE_RULES: dict[str, NameRule] = {
    "postgresql": _PG_IDENTIFIER,
    "mariadb": _MARIADB_DATABASE,
}
USER_RULES: dict[str, NameRule] = {
    "postgresql": _PG_IDENTIFIER,
    "mariadb": _MARIADB_USER,
    "redis": _REDIS_USER,
}
# Hosts a MariaDB user may be bound to: '%', a name, an IPv4 address or net/mask.
HOST_PATTERN = re.compile(r"%|localhost|[0-9.]{7,15}(/[0-9.]{7,15})?|[A-Za-z0-9.%_-]{1,60}")


def check_database_name(datastore: str, name: str) -> None:
    rule = DATABASE_RULES.get(datastore)
    if rule is None:
        raise BadRequest(f"Databases are not supported for {datastore}.")
    rule.check("Database", name)


def check_user_name(datastore: str, name: str) -> None:
    USER_RULES[datastore].check("User", name)


def check_host(host: str) -> None:
    if not HOST_PATTERN.fullmatch(host):
        raise BadRequest(
            f"Host {host!r} is not valid: use %, localhost, an IPv4 address or address/netmask."
        )
