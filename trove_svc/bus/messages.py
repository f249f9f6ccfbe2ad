"""Typed clients: casts to the task manager, calls to a guest (`trove_wire.contract`).

A cast names a task recorded in the store; the task's arguments and sealed secrets stay
there, so no secret travels on the bus and any task manager can run (or take over) it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from trove_svc.bus.client import Bus
from trove_wire.contract import Call
from trove_wire.envelope import Context

R = TypeVar("R")


@dataclass(frozen=True)
class RunTask:
    method = "run_task"
    task_id: str
    instance_id: str

    @classmethod
    def from_args(cls, args: dict[str, Any]) -> RunTask:
        return cls(task_id=str(args["task_id"]), instance_id=str(args["instance_id"]))


class TaskManagerClient:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    def run_task(self, message: RunTask, context: Context) -> None:
        self._bus.cast_task(message.method, asdict(message), context)


class GuestClient:
    """Sync calls to an instance's guest agent."""

    def __init__(self, bus: Bus, timeout: float) -> None:
        self._bus = bus
        self._timeout = timeout

    def call(self, instance_id: str, request: Call[R], context: Context) -> R:
        return self._bus.call_guest(instance_id, request, context, self._timeout)
