"""Databases, users and root on a running instance: checked here, done by its guest.

Names and passwords are checked before anything reaches the datastore; every call that
changes something goes into the instance's audit trail with its outcome.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, TypeVar

from trove_svc import compute
from trove_svc.bus.messages import GuestClient
from trove_svc.domain import audit, errors, parameter_rules, status
from trove_svc.domain.instances import InstanceService
from trove_svc.process.settings import Settings
from trove_svc.security import names, passwords
from trove_svc.security.caller import Caller
from trove_svc.store.models import Instance
from trove_wire import contract, datastores

R = TypeVar("R")

_WORDS = {"databases": "Databases are", "users": "Users are", "root": "Root is"}


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


def _listed(names_: list[str]) -> str:
    shown = ", ".join(names_[:10])
    return shown + (f" and {len(names_) - 10} more" if len(names_) > 10 else "")


class AccountService:
    def __init__(self, settings: Settings, instances: InstanceService, guest: GuestClient) -> None:
        self._settings = settings
        self._instances = instances
        self._guest = guest

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

    def _password(self, datastore: str, password: object, whose: str) -> None:
        passwords.check(datastore, password, self._settings.password_min_length, whose)

    @contextlib.contextmanager
    def _recorded(
        self, caller: Caller, instance_id: str, action: str, summary: str
    ) -> Iterator[None]:
        with audit.recorded(
            self._settings, instance_id, caller.project_id, caller.context, action, summary
        ):
            yield

    def _change(
        self, caller: Caller, instance_id: str, request: contract.Call[R], summary: str
    ) -> R:
        """A call that changes the instance: done by its guest, and put in its audit trail.
        Never on a replica: what it holds is its source's, and a change made on it alone
        would part it from its source."""
        instance, _ = self._instances.get(caller, instance_id)
        if instance.replica_of_id:
            raise errors.BadRequest(
                f"Instance {instance_id} is a replica: its databases, users and root are its "
                f"source's; change them on {instance.replica_of_id}."
            )
        with self._recorded(caller, instance_id, request.method, summary):
            return self._guest.call(instance_id, request, caller.context)

    # Databases

    def list_databases(self, caller: Caller, instance_id: str) -> list[dict[str, Any]]:
        self._ready(caller, instance_id, "databases")
        return self._guest.call(instance_id, contract.ListDatabases(), caller.context)

    def create_databases(
        self, caller: Caller, instance_id: str, databases: list[dict[str, Any]]
    ) -> None:
        instance, datastore = self._ready(caller, instance_id, "databases")
        for database in databases:
            names.check_database_name(datastore, database["name"])
            parameter_rules.check_database_options(instance.datastore_version, database)
        summary = f"databases {_listed([d['name'] for d in databases])}"
        self._change(caller, instance_id, contract.CreateDatabases(databases), summary)

    def delete_database(self, caller: Caller, instance_id: str, name: str) -> None:
        _, datastore = self._ready(caller, instance_id, "databases")
        names.check_database_name(datastore, name)
        self._change(caller, instance_id, contract.DeleteDatabase(name), f"database {name}")

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
            self._password(datastore, user["password"], f"user {user['name']}")
            if user.get("host"):
                names.check_host(user["host"])
            for database in user.get("databases", []):
                names.check_database_name(datastore, database["name"])
        summary = f"users {_listed([u['name'] for u in users])}"
        self._change(caller, instance_id, contract.CreateUsers(users), summary)

    def delete_user(self, caller: Caller, instance_id: str, user: str) -> None:
        _, datastore = self._ready(caller, instance_id)
        name, host = _checked_user(datastore, user)
        self._change(caller, instance_id, contract.DeleteUser(name, host), f"user {name}")

    def change_passwords(
        self, caller: Caller, instance_id: str, users: list[dict[str, Any]]
    ) -> None:
        _, datastore = self._ready(caller, instance_id)
        for user in users:
            names.check_user_name(datastore, user["name"])
            self._password(datastore, user["password"], f"user {user['name']}")
            if user.get("host"):
                names.check_host(user["host"])
        summary = f"passwords of {_listed([u['name'] for u in users])}"
        self._change(caller, instance_id, contract.ChangePasswords(users), summary)

    def update_user(
        self, caller: Caller, instance_id: str, user: str, attributes: dict[str, Any]
    ) -> None:
        _, datastore = self._ready(caller, instance_id)
        name, host = _checked_user(datastore, user)
        if attributes.get("name"):
            names.check_user_name(datastore, attributes["name"])
        if attributes.get("host"):
            names.check_host(attributes["host"])
        if "password" in attributes:
            self._password(datastore, attributes["password"], f"user {name}")
        summary = f"user {name}: {', '.join(sorted(attributes))}"
        self._change(caller, instance_id, contract.UpdateUser(name, host, attributes), summary)

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
        summary = f"user {name}: databases {_listed(databases)}"
        self._change(caller, instance_id, contract.GrantAccess(name, host, databases), summary)

    def revoke_access(self, caller: Caller, instance_id: str, user: str, database: str) -> None:
        _, datastore = self._ready(caller, instance_id, "databases")
        name, host = _checked_user(datastore, user)
        names.check_database_name(datastore, database)
        summary = f"user {name}: database {database}"
        self._change(caller, instance_id, contract.RevokeAccess(name, host, database), summary)

    # Root

    def enable_root(self, caller: Caller, instance_id: str, password: str | None) -> dict[str, str]:
        instance, datastore = self._ready(caller, instance_id, "root")
        if not compute.has_own_account(self._settings, instance):
            # Root on a datastore runs programs as the account the server runs as
            # (PostgreSQL's COPY ... TO PROGRAM, say): here, the service's own.
            raise errors.Forbidden(
                "Root is not available here: this deployment's instances run as the "
                "service's own account (it was not started as root), so root on a "
                "datastore would reach the service's files."
            )
        if password is not None:
            self._password(datastore, password, "root")
        chosen = password or self._settings.new_secret()
        return self._change(caller, instance_id, contract.EnableRoot(chosen), "root")

    def is_root_enabled(self, caller: Caller, instance_id: str) -> bool:
        self._ready(caller, instance_id, "root")
        return bool(self._guest.call(instance_id, contract.IsRootEnabled(), caller.context))

    def disable_root(self, caller: Caller, instance_id: str) -> None:
        self._ready(caller, instance_id, "root")
        self._change(caller, instance_id, contract.DisableRoot(), "root")
