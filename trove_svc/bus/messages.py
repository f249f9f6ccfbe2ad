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


TaskManagerMessage = InstanceCreate | InstanceDelete
TASKMANAGER_MESSAGES: dict[str, type[TaskManagerMessage]] = {
    InstanceCreate.method: InstanceCreate,
    InstanceDelete.method: InstanceDelete,
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


class GuestClient:
    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    def list_databases(self, instance_id: str, context: Context) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._bus.call(
            guest_queue(instance_id), "list_databases", {}, context, self._timeout
        )
        return result
