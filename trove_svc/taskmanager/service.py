"""The task manager's process: consume casts, dispatch each to its flow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from trove_svc import status
from trove_svc.bus.client import TASKMANAGER_QUEUE, Bus
from trove_svc.bus.messages import (
    TASKMANAGER_MESSAGES,
    InstanceCreate,
    InstanceDelete,
    InstanceReconfigure,
    InstanceRestart,
    TaskManagerMessage,
)
from trove_svc.settings import Settings
from trove_svc.store.models import Task
from trove_svc.taskmanager import flows
from trove_svc.taskmanager.runner import PlaybookRunner
from trove_wire.amqp import Consumer
from trove_wire.envelope import Envelope, Reply

LOG = logging.getLogger(__name__)

FLOWS: dict[type[Any], Callable[[flows.FlowDeps, Any], None]] = {
    InstanceCreate: flows.instance_create,
    InstanceDelete: flows.instance_delete,
    InstanceRestart: flows.instance_restart,
    InstanceReconfigure: flows.instance_reconfigure,
}


class TaskManager:
    def __init__(self, settings: Settings, bus: Bus) -> None:
        self.deps = flows.FlowDeps(settings=settings, runner=PlaybookRunner(settings), bus=bus)
        self.consumer = Consumer(
            settings.transport_url,
            TASKMANAGER_QUEUE,
            self.handle,
            workers=settings.taskmanager_workers,
        )

    def handle(self, envelope: Envelope) -> Reply | None:
        message_type = TASKMANAGER_MESSAGES.get(envelope.method)
        if message_type is None:
            LOG.error("dropped unknown task manager method %r", envelope.method)
            return None
        try:
            message: TaskManagerMessage = message_type(**envelope.args)
        except TypeError:
            LOG.error("dropped %s with malformed arguments", envelope.method)
            return None
        LOG.info(
            "%s for instance %s (task %s, request %s)",
            envelope.method,
            message.instance_id,
            message.task_id,
            envelope.context.request_id,
        )
        try:
            FLOWS[message_type](self.deps, message)
        except Exception as exc:
            LOG.exception("%s failed for instance %s", envelope.method, message.instance_id)
            self._record_crash(message, exc)
        return None

    def _record_crash(self, message: TaskManagerMessage, exc: Exception) -> None:
        now = self.deps.settings.clock()
        text = f"The task manager failed: {type(exc).__name__}."
        Task.update(state="FAILED", finished_at=now, message=text).where(
            Task.id == message.task_id
        ).execute()
        status.record_fault(message.instance_id, now, text)

    def run(self) -> None:
        self.consumer.run()

    def stop(self) -> None:
        self.consumer.stop()
