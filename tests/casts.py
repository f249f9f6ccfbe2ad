"""The task managers' queue, stood in for in unit tests (a `TaskManagerClient`)."""

from __future__ import annotations

from trove_svc.bus.messages import RunTask
from trove_svc.domain import errors
from trove_wire.envelope import Context


class Casts:
    """The casts sent, in order, with who asked; after `refuse_after` casts it refuses
    the next ones as an unavailable bus does."""

    def __init__(self) -> None:
        self.sent: list[tuple[RunTask, Context]] = []
        self.refuse_after: int | None = None

    def run_task(self, message: RunTask, context: Context) -> None:
        if self.refuse_after is not None and len(self.sent) >= self.refuse_after:
            raise errors.ServiceUnavailable("The message bus is unavailable.")
        self.sent.append((message, context))

    @property
    def task_ids(self) -> list[str]:
        return [message.task_id for message, _ in self.sent]
