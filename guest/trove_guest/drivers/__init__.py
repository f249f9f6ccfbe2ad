"""Datastore drivers: one per datastore, behind one interface the agent dispatches to."""

from __future__ import annotations

from typing import Any, Protocol

HEALTHY = "HEALTHY"
SHUTDOWN = "SHUTDOWN"
ERROR = "ERROR"


class NotSupported(Exception):
    """The datastore has no such concept (for example databases on Redis)."""


class DatastoreDriver(Protocol):
    def health(self) -> tuple[str, str | None]:
        """Return (operating status, message): connect and run a trivial query."""

    def list_databases(self) -> list[dict[str, Any]]:
        """Return the user-visible databases as Trove shapes them."""


def load_driver(datastore: str, connection: dict[str, Any]) -> DatastoreDriver:
    if datastore == "postgresql":
        from trove_guest.drivers.postgresql import PostgresDriver

        return PostgresDriver(connection)
    raise NotSupported(f"no guest driver for datastore {datastore!r}")
