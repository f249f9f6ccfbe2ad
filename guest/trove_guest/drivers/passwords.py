"""Passwords as the datastores receive them from the guest.

PostgreSQL gets a SCRAM-SHA-256 verifier made here, as psql's `\\password` does, never
the clear text: so no statement log, activity view or statistics extension can show it,
whatever logging a tenant's configuration group turned on.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


def scram(conn: psycopg.Connection[Any], password: str) -> sql.Literal:
    """The SCRAM-SHA-256 verifier of `password`, as a literal for a PASSWORD clause.

    A SCRAM verifier does not depend on the role's name, so a rename keeps it valid."""
    verifier = conn.pgconn.encrypt_password(password.encode(), b"", b"scram-sha-256")
    return sql.Literal(verifier.decode())
