"""Typed messages: one dataclass per message, one client method per message.

Casts go to the task manager (slow work); calls go to a guest agent (fast queries).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from trove_svc.bus.client import TASKMANAGER_QUEUE, Bus, guest_queue
from trove_wire.envelope import Context


@dataclass(frozen=True)
class InstanceCreate:
    method = "instance_create"
    instance_id: str
    task_id: str
    databases: list[dict[str, Any]] = field(default_factory=list)
    # Carries the users' passwords to the task manager; never stored or logged.
    users: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class InstanceDelete:
    method = "instance_delete"
    instance_id: str
    task_id: str


@dataclass(frozen=True)
class InstanceRestart:
    method = "instance_restart"
    instance_id: str
    task_id: str


@dataclass(frozen=True)
class InstanceReconfigure:
    """Apply a new flavor or new access rules; the record changes once they are applied."""

    method = "instance_reconfigure"
    instance_id: str
    task_id: str
    flavor_id: str | None = None
    access: dict[str, Any] | None = None


TaskManagerMessage = InstanceCreate | InstanceDelete | InstanceRestart | InstanceReconfigure
TASKMANAGER_MESSAGES: dict[str, type[TaskManagerMessage]] = {
    InstanceCreate.method: InstanceCreate,
    InstanceDelete.method: InstanceDelete,
    InstanceRestart.method: InstanceRestart,
    InstanceReconfigure.method: InstanceReconfigure,
}


class TaskManagerClient:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def _cast(self, message: TaskManagerMessage, context: Context) -> None:
        self._bus.cast(TASKMANAGER_QUEUE, message.method, asdict(message), context)

    def instance_create(self, message: InstanceCreate, context: Context) -> None:
        self._cast(message, context)

    def instance_delete(self, message: InstanceDelete, context: Context) -> None:
        self._cast(message, context)

    def instance_restart(self, message: InstanceRestart, context: Context) -> None:
        self._cast(message, context)

    def instance_reconfigure(self, message: InstanceReconfigure, context: Context) -> None:
        self._cast(message, context)


class GuestClient:
    """Sync calls to an instance's guest agent; one method per message."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    def _call(self, instance_id: str, method: str, context: Context, **args: Any) -> Any:
        return self._bus.call(guest_queue(instance_id), method, args, context, self._timeout)

    def list_databases(self, instance_id: str, context: Context) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(instance_id, "list_databases", context)
        return result

    def create_databases(
        self, instance_id: str, context: Context, databases: list[dict[str, Any]]
    ) -> None:
        self._call(instance_id, "create_databases", context, databases=databases)

    def delete_database(self, instance_id: str, context: Context, name: str) -> None:
        self._call(instance_id, "delete_database", context, name=name)

    def list_users(self, instance_id: str, context: Context) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(instance_id, "list_users", context)
        return result

    def get_user(
        self, instance_id: str, context: Context, name: str, host: str | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(instance_id, "get_user", context, name=name, host=host)
        return result

    def create_users(self, instance_id: str, context: Context, users: list[dict[str, Any]]) -> None:
        self._call(instance_id, "create_users", context, users=users)

    def delete_user(self, instance_id: str, context: Context, name: str, host: str | None) -> None:
        self._call(instance_id, "delete_user", context, name=name, host=host)

    def change_passwords(
        self, instance_id: str, context: Context, users: list[dict[str, Any]]
    ) -> None:
        self._call(instance_id, "change_passwords", context, users=users)

    def update_user(
        self,
        instance_id: str,
        context: Context,
        name: str,
        host: str | None,
        attributes: dict[str, Any],
    ) -> None:
        self._call(instance_id, "update_user", context, name=name, host=host, attributes=attributes)

    def list_access(
        self, instance_id: str, context: Context, name: str, host: str | None
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            instance_id, "list_access", context, name=name, host=host
        )
        return result

    def grant_access(
        self, instance_id: str, context: Context, name: str, host: str | None, databases: list[str]
    ) -> None:
        self._call(instance_id, "grant_access", context, name=name, host=host, databases=databases)

    def revoke_access(
        self, instance_id: str, context: Context, name: str, host: str | None, database: str
    ) -> None:
        self._call(instance_id, "revoke_access", context, name=name, host=host, database=database)

    def enable_root(self, instance_id: str, context: Context, password: str) -> dict[str, str]:
        result: dict[str, str] = self._call(instance_id, "enable_root", context, password=password)
        return result

    def is_root_enabled(self, instance_id: str, context: Context) -> bool:
        return bool(self._call(instance_id, "is_root_enabled", context))

    def disable_root(self, instance_id: str, context: Context) -> None:
        self._call(instance_id, "disable_root", context)
