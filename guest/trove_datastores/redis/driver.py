"""Redis through redis-py, as the guest's admin ACL user over TCP.

Trove-svc users are Redis 6+ ACL users; Redis has no databases to create and no root
account, so those calls answer NotSupported. ACL changes are saved to the ACL file.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import redis

from trove_datastores.base import REPLICATION_PREFIX, replication_account
from trove_guest.drivers import (
    ERROR,
    HEALTHY,
    SHUTDOWN,
    Conflict,
    Invalid,
    NotFound,
    NotSupported,
)
from trove_wire import datastores

SPEC = datastores.get("redis")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def file_values(path: Path) -> dict[str, str]:
    """The directives of a redis.conf and the files it includes, as Redis reads them at
    start: {name: its arguments joined by a space}, the last of a name winning. A file
    that is not there gives none (as an include of one the role has not yet written)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line)
        name, arguments = words[0].lower(), " ".join(words[1:])
        if name == "include":
            values.update(file_values(Path(arguments)))
        else:
            values[name] = arguments
    return values


class RedisDriver:
    def __init__(self, connection: dict[str, Any]) -> None:
        self._admin = str(connection["user"])
        self._client = redis.Redis(
            host=connection["host"],
            port=int(connection["port"]),
            username=self._admin,
            password=connection["password"],
            socket_timeout=3,
            socket_connect_timeout=3,
        )
        self._config_file = str(connection.get("config_file") or "")

    def health(self) -> tuple[str, str | None]:
        try:
            self._client.ping()
        except redis.ConnectionError as exc:
            return SHUTDOWN, str(exc)
        except redis.RedisError as exc:
            return ERROR, type(exc).__name__
        return HEALTHY, None

    @staticmethod
    def _no_databases() -> NotSupported:
        return NotSupported("Databases are not supported for redis.")

    def list_databases(self) -> list[dict[str, Any]]:
        raise self._no_databases()

    def create_databases(self, databases: list[dict[str, Any]]) -> None:
        raise self._no_databases()

    def delete_database(self, name: str) -> None:
        raise self._no_databases()

    def _names(self) -> list[str]:
        return sorted(
            n.decode() if isinstance(n, bytes) else str(n) for n in self._client.acl_users()
        )

    def _require(self, name: str) -> None:
        if (
            name in SPEC.hidden_users
            or name == self._admin
            or name.startswith(REPLICATION_PREFIX)
            or name not in self._names()
        ):
            raise NotFound(f"User {name!r} does not exist.")

    def list_users(self) -> list[dict[str, Any]]:
        return [
            {"name": n, "host": "%", "databases": []}
            for n in self._names()
            if n not in SPEC.hidden_users
            and n != self._admin
            and not n.startswith(REPLICATION_PREFIX)
        ]

    def get_user(self, name: str, host: str | None) -> dict[str, Any]:
        self._require(name)
        return {"name": name, "host": "%", "databases": []}

    def create_users(self, users: list[dict[str, Any]]) -> None:
        existing = set(self._names())
        for user in users:
            if user["name"] in existing:
                raise Conflict(f"User {user['name']!r} already exists.")
        for user in users:
            self._client.acl_setuser(
                user["name"],
                enabled=True,
                reset=True,
                passwords=[f"+{user['password']}"],
                keys=["*"],
                channels=["*"],
                commands=["+@all", "-@admin", "-@dangerous"],
            )
        self._client.acl_save()

    def delete_user(self, name: str, host: str | None) -> None:
        self._require(name)
        self._client.acl_deluser(name)
        self._client.acl_save()

    def change_passwords(self, users: list[dict[str, Any]]) -> None:
        for user in users:
            self._require(user["name"])
            self._client.acl_setuser(
                user["name"], reset_passwords=True, passwords=[f"+{user['password']}"]
            )
        self._client.acl_save()

    def update_user(self, name: str, host: str | None, attributes: dict[str, Any]) -> None:
        self._require(name)
        if attributes.get("name") and attributes["name"] != name:
            raise NotSupported("Redis ACL users cannot be renamed; create a new user.")
        if attributes.get("password"):
            self.change_passwords([{"name": name, "password": attributes["password"]}])

    def list_access(self, name: str, host: str | None) -> list[dict[str, Any]]:
        raise self._no_databases()

    def grant_access(self, name: str, host: str | None, databases: list[str]) -> None:
        raise self._no_databases()

    def revoke_access(self, name: str, host: str | None, database: str) -> None:
        raise self._no_databases()

    def enable_root(self, password: str) -> dict[str, str]:
        raise NotSupported("Root is not supported for redis.")

    def is_root_enabled(self) -> bool:
        raise NotSupported("Root is not supported for redis.")

    def disable_root(self) -> None:
        raise NotSupported("Root is not supported for redis.")

    # Configuration

    def apply_configuration(
        self, values: dict[str, str], reset: dict[str, str] | None = None
    ) -> None:
        """CONFIG SET each dynamic value (the role wrote them all to the server's file), and
        each of `reset` back to what the server's files now give it (the value the next
        start has), or where they give none to the default it comes with."""
        reset = reset or {}
        if any(name not in SPEC.tunables for name in set(values) | set(reset)):
            raise Invalid("only the datastore's tunable parameters can be applied")
        for name, value in values.items():
            self._client.config_set(name, value)
        if reset:
            base = file_values(Path(self._config_file)) if self._config_file else {}
            for name, default in reset.items():
                self._client.config_set(name, base.get(name, default))

    def show_configuration(self) -> dict[str, str]:
        shown: dict[str, str] = {}
        for name in sorted(SPEC.tunables):
            for key, value in self._client.config_get(name).items():
                shown[_text(key)] = _text(value)
        return shown

    # Checks

    def table_row_counts(self) -> dict[str, int]:
        """Redis has no tables: the keys of each logical database."""
        keyspace = self._client.info("keyspace")
        return {str(db): int(stats["keys"]) for db, stats in keyspace.items()}

    # Replication

    def add_replication_account(self, replica_id: str, password: str) -> dict[str, str]:
        """An ACL user that may only sync (PSYNC, REPLCONF, PING); saved to the ACL file."""
        name = replication_account(replica_id)
        self._client.acl_setuser(
            name,
            enabled=True,
            reset=True,
            passwords=[f"+{password}"],
            commands=["+psync", "+replconf", "+ping"],
        )
        self._client.acl_save()
        return {"user": name, "slot": ""}

    def remove_replication_account(self, replica_id: str) -> None:
        name = replication_account(replica_id)
        if name in self._names():
            self._client.acl_deluser(name)
            self._client.acl_save()

    def replication_state(self) -> dict[str, Any]:
        info = self._client.info("replication")
        replica = info.get("role") == "slave"
        offset = int(info.get("slave_repl_offset" if replica else "master_repl_offset", 0))
        return {
            "replica": replica,
            "position": offset,
            "applied": offset,
            "streaming": replica and info.get("master_link_status") == "up",
        }

    def promote(self) -> dict[str, Any]:
        self._client.replicaof("NO", "ONE")
        return self.replication_state()
