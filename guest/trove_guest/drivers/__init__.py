"""Datastore drivers: one per datastore, behind one interface the agent dispatches to."""

from __future__ import annotations

from typing import Any, Protocol

HEALTHY = "HEALTHY"
SHUTDOWN = "SHUTDOWN"
ERROR = "ERROR"


class NotSupported(Exception):
    """The datastore has no such concept (for example databases on Redis)."""


class NotFound(Exception):
    """The database or user named does not exist."""


class DatastoreDriver(Protocol):
    def health(self) -> tuple[str, str | None]:
        """Return (operating status, message): connect and run a trivial query."""

    def list_databases(self) -> list[dict[str, Any]]: ...
    def create_databases(self, databases: list[dict[str, Any]]) -> None: ...
    def delete_database(self, name: str) -> None: ...
    def list_users(self) -> list[dict[str, Any]]: ...
    def get_user(self, name: str, host: str | None) -> dict[str, Any]: ...
    def create_users(self, users: list[dict[str, Any]]) -> None: ...
    def delete_user(self, name: str, host: str | None) -> None: ...
    def change_passwords(self, users: list[dict[str, Any]]) -> None: ...
    def update_user(self, name: str, host: str | None, attributes: dict[str, Any]) -> None: ...
    def list_access(self, name: str, host: str | None) -> list[dict[str, Any]]: ...
    def grant_access(self, name: str, host: str | None, databases: list[str]) -> None: ...
    def revoke_access(self, name: str, host: str | None, database: str) -> None: ...
    def enable_root(self, password: str) -> dict[str, str]: ...
    def is_root_enabled(self) -> bool: ...
    def disable_root(self) -> None: ...


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
