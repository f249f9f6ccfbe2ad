"""Datastore drivers: one per datastore. A driver has `health()` and one method per call
of `trove_wire.contract`, named as the call and taking its arguments; the agent dispatches
to them by name. Drivers raise the contract's errors (`NotFound`, `Conflict`, ...)."""

from __future__ import annotations

from typing import Any, Protocol

from trove_wire.contract import Conflict, NotFound, NotSupported

HEALTHY = "HEALTHY"
SHUTDOWN = "SHUTDOWN"
ERROR = "ERROR"

__all__ = [
    "ERROR",
    "HEALTHY",
    "SHUTDOWN",
    "Conflict",
    "DatastoreDriver",
    "NotFound",
    "NotSupported",
]


class DatastoreDriver(Protocol):
    def health(self) -> tuple[str, str | None]:
        """Return (operating status, message): connect and run a trivial query."""


def load_driver(datastore: str, connection: dict[str, Any]) -> DatastoreDriver:
    """The driver for `datastore`; each imports only its own client library."""
    if datastore == "postgresql":
        from trove_guest.drivers.postgresql import PostgresDriver

        return PostgresDriver(connection)
    if datastore == "mariadb":
        from trove_guest.drivers.mariadb import MariaDBDriver

        return MariaDBDriver(connection)
    if datastore == "redis":
        from trove_guest.drivers.redis import RedisDriver

        return RedisDriver(connection)
    raise NotSupported(f"no guest driver for datastore {datastore!r}")
