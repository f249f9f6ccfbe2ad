"""What every flow is given: the task manager's parts, and the claim on its task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trove_svc.bus.broker import BrokerAdmin
from trove_svc.bus.client import Bus
from trove_svc.domain import tasks
from trove_svc.process.settings import Settings
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.models import Task
from trove_svc.taskmanager.leases import Lease
from trove_svc.taskmanager.runner import PlaybookRunner
from trove_wire import logs
from trove_wire.envelope import Context


@dataclass(frozen=True)
class FlowDeps:
    settings: Settings
    runner: PlaybookRunner
    bus: Bus
    keys: ServiceKeys
    admin: BrokerAdmin
    # The broker URL a guest connects with, given its account's user and password.
    guest_url: Callable[[str, str], str]


@dataclass
class Claim:
    """A task this task manager holds, for as long as its lease does."""

    task: Task
    owner: str
    lease: Lease

    def still_ours(self) -> bool:
        """Whether the flow may go on: false once the task was taken from us, or once our
        lease, unrenewed, nears its end (another task manager may soon take it over)."""
        return self.lease.holds()

    def gone(self) -> bool:
        """A run's cancel check: true once the flow may not go on."""
        return not self.still_ours()

    def confirmed(self) -> bool:
        """Whether the task is still ours as the store says now, not as the last renewal
        did: asked before a step that must not be taken by a run that lost its task."""
        if not self.still_ours():
            return False
        if not tasks.owns(self.task.id, self.owner):
            self.lease.lose()
            return False
        return True


def task_context(task: Task) -> Context:
    """Who asked for `task`: carried with the guest calls made for it."""
    return Context(project=task.project_id, user=task.requested_by, request_id=task.request_id)


def guest_context() -> Context:
    """For a guest call a flow makes: the request id of the task being served (its runs
    are `logs.serving` it), so the guest's lines for that request share it."""
    return Context(request_id=logs.current_request_id())
