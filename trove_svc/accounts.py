"""Databases, users and root on a running instance: checked here, done by its guest."""

from __future__ import annotations

from typing import Any

from trove_svc import errors, names, status
from trove_svc.bus.messages import GuestClient
from trove_svc.instances import Caller, InstanceService
from trove_svc.store.models import Instance
from trove_wire import contract, datastores


def split_user(name_at_host: str) -> tuple[str, str | None]:
    """Trove addresses a user as ``name`` or ``name@host`` (hosts matter to MariaDB)."""
    if "@" in name_at_host:
        name, host = name_at_host.rsplit("@", 1)
        return name, host
    return name_at_host, None


def _checked_user(datastore: str, user: str) -> tuple[str, str | None]:
    name, host = split_user(user)
    names.check_user_name(datastore, name)
    if host is not None:
        names.check_host(host)
    return name, host


_WORDS = {"databases": "Databases are", "users": "Users are", "root": "Root is"}


class AccountService:
    def __init__(self, instances: InstanceService, guest: GuestClient, new_secret: Any) -> None:
        self._instances = instances
        self._guest = guest
        self._new_secret = new_secret

    def _ready(
        self, caller: Caller, instance_id: str, needs: str | None = None
    ) -> tuple[Instance, str]:
        """The instance, if it is ACTIVE and its datastore has what the call `needs`
        (a capability of the registry: databases, users, root)."""
        instance, _ = self._instances.get(caller, instance_id)
        datastore = instance.datastore_version.datastore.name
        if needs is not None and not getattr(datastores.get(datastore).capabilities, needs):
            raise errors.BadRequest(f"{_WORDS[needs]} not supported for {datastore}.")
        status.require_active(instance.id, instance.status)
        return instance, datastore

    # Databases

    def list_databases(self, caller: Caller, instance_id: str) -> list[dict[str, Any]]:
        self._ready(caller, instance_id, "databases")
        return self._guest.call(instance_id, contract.ListDatabases(), caller.context)

    def create_databases(
        self, caller: Caller, instance_id: str, databases: list[dict[str, Any]]
    ) -> None:
        _, datastore = self._ready(caller, instance_id, "databases")
        for database in databases:
            names.check_database_name(datastore, database["name"])
        self._guest.call(instance_id, contract.CreateDatabases(databases), caller.context)

    def delete_database(self, caller: Caller, instance_id: str, name: str) -> None:
        _, datastore = self._ready(caller, instance_id, "databases")
        names.check_database_name(datastore, name)
        self._guest.call(instance_id, contract.DeleteDatabase(name), caller.context)

    # Users

    def list_users(self, caller: Caller, instance_id: str) -> list[dict[str, Any]]:
        self._ready(caller, instance_id)
        return self._guest.call(instance_id, contract.ListUsers(), caller.context)

    def get_user(self, caller: Caller, instance_id: str, user: str) -> dict[str, Any]:
        _, datastore = self._ready(caller, instance_id)
        name, host = _checked_user(datastore, user)
        return self._guest.call(instance_id, contract.GetUser(name, host), caller.context)

    def create_users(self, caller: Caller, instance_id: str, users: list[dict[str, Any]]) -> None:
        _, datastore = self._ready(caller, instance_id)
        for user in users:
            names.check_user_name(datastore, user["name"])
            if user.get("host"):
                names.check_host(user["host"])
            for database in user.get("databases", []):
                names.check_database_name(datastore, database["name"])
        self._guest.call(instance_id, contract.CreateUsers(users), caller.context)

    def delete_user(self, caller: Caller, instance_id: str, user: str) -> None:
        _, datastore = self._ready(caller, instance_id)
        name, host = _checked_user(datastore, user)
        self._guest.call(instance_id, contract.DeleteUser(name, host), caller.context)

    def change_passwords(
        self, caller: Caller, instance_id: str, users: list[dict[str, Any]]
    ) -> None:
        _, datastore = self._ready(caller, instance_id)
        for user in users:
            names.check_user_name(datastore, user["name"])
        self._guest.call(instance_id, contract.ChangePasswords(users), caller.context)

    def update_user(
        self, caller: Caller, instance_id: str, user: str, attributes: dict[str, Any]
    ) -> None:
        _, datastore = self._ready(caller, instance_id)
        name, host = _checked_user(datastore, user)
        if attributes.get("name"):
            names.check_user_name(datastore, attributes["name"])
        if attributes.get("host"):
            names.check_host(attributes["host"])
        self._guest.call(instance_id, contract.UpdateUser(name, host, attributes), caller.context)

    def list_access(self, caller: Caller, instance_id: str, user: str) -> list[dict[str, Any]]:
        _, datastore = self._ready(caller, instance_id, "databases")
        name, host = _checked_user(datastore, user)
        return self._guest.call(instance_id, contract.ListAccess(name, host), caller.context)

    def grant_access(
        self, caller: Caller, instance_id: str, user: str, databases: list[str]
    ) -> None:
        _, datastore = self._ready(caller, instance_id, "databases")
        name, host = _checked_user(datastore, user)
        for database in databases:
            names.check_database_name(datastore, database)
        self._guest.call(instance_id, contract.GrantAccess(name, host, databases), caller.context)

    def revoke_access(self, caller: Caller, instance_id: str, user: str, database: str) -> None:
        _, datastore = self._ready(caller, instance_id, "databases")
        name, host = _checked_user(datastore, user)
        names.check_database_name(datastore, database)
        self._guest.call(instance_id, contract.RevokeAccess(name, host, database), caller.context)

    # Root

    def enable_root(self, caller: Caller, instance_id: str, password: str | None) -> dict[str, str]:
        self._ready(caller, instance_id, "root")
        return self._guest.call(
            instance_id, contract.EnableRoot(password or self._new_secret()), caller.context
        )

    def is_root_enabled(self, caller: Caller, instance_id: str) -> bool:
        self._ready(caller, instance_id, "root")
        return bool(self._guest.call(instance_id, contract.IsRootEnabled(), caller.context))

    def disable_root(self, caller: Caller, instance_id: str) -> None:
        self._ready(caller, instance_id, "root")
        self._guest.call(instance_id, contract.DisableRoot(), caller.context)
