"""The names of databases, users and hosts, checked before they reach a datastore.

The rules are the datastore registry's (`trove_wire.datastores`); the datastore's own driver
still passes names as quoted identifiers or bound parameters.
"""

from __future__ import annotations

import re

from trove_svc.domain.errors import BadRequest
from trove_wire import datastores

# Hosts a MariaDB user may be bound to: '%', a name, an IPv4 address or net/mask.
HOST_PATTERN = re.compile(r"%|localhost|[0-9.]{7,15}(/[0-9.]{7,15})?|[A-Za-z0-9.%_-]{1,60}")


def check_database_name(datastore: str, name: object) -> None:
    rule = datastores.get(datastore).database_rule
    if rule is None:
        raise BadRequest(f"Databases are not supported for {datastore}.")
    problem = rule.problem("Database", name)
    if problem:
        raise BadRequest(problem)


def check_user_name(datastore: str, name: object) -> None:
    problem = datastores.get(datastore).user_rule.problem("User", name)
    if problem:
        raise BadRequest(problem)


def check_host(host: str) -> None:
    """The rule, never the host (which may be anything a client sent)."""
    if not HOST_PATTERN.fullmatch(host):
        raise BadRequest(
            "A user's host is not valid: use %, localhost, an IPv4 address or "
            "address/netmask, or a host name (letters, digits, . _ - %; at most 60)."
        )
