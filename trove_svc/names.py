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

DATABASE_RULES: dict[str, NameRule] = {"postgresql": _PG_IDENTIFIER}
USER_RULES: dict[str, NameRule] = {"postgresql": _PG_IDENTIFIER}


def check_database_name(datastore: str, name: str) -> None:
    DATABASE_RULES[datastore].check("Database", name)


def check_user_name(datastore: str, name: str) -> None:
    USER_RULES[datastore].check("User", name)
