"""The task manager's effects stood in for, for the flows' unit tests: a playbook runner
whose runs succeed or fail as a test says, guests that answer (or fail, or time out) as a
test says, the broker's accounts, and a clock that waits without sleeping. Each is handed
to a flow through `FlowDeps`; what they did is read from the store's rows wherever a row
can tell."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from tests.support import INSTANCE_PORTS
from trove_svc.domain import errors, tasks
from trove_svc.process.settings import Settings
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.models import Instance, Task
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.leases import Lease
from trove_svc.taskmanager.runner import RunResult, StepCallback
from trove_wire.seal import new_key

OWNER = "tm-1"
# The ports a test's instances are recorded on: the test run's own (a source's is the
# first, another instance's the next).
SOURCE_PORT, INSTANCE_PORT = INSTANCE_PORTS[0], INSTANCE_PORTS[0] + 1
# Far enough that no wait in a test reaches it: a lease is lost only when a test says so.
LEASE_SECONDS = 1_000_000.0
# The steps every fake run shows on its instance, one after the other.
STEPS = ("compute_local : Prepare the instance", "datastore : Apply", "guest_agent : Start")


class FakeClock:
    """The service's clock; `time.sleep` and `time.monotonic` are tied to it in the tests
    (see conftest), so that a wait passes at once and a deadline still comes."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass(frozen=True)
class Run:
    """One playbook run as the runner was asked for it."""

    ident: str
    playbook: str
    instance_id: str
    extravars: dict[str, Any]
    secrets: dict[str, Any]
    skip_tags: tuple[str, ...] = ()


@dataclass
class _Script:
    outcome: RunResult
    steps: tuple[str, ...]
    instance_id: str | None
    times: int | None


class FakeRunner:
    """The playbook runner: every run shows `STEPS` on its instance (as ansible-runner's
    task-start events do) and succeeds, unless a test scripted it to fail, time out, find
    its host unreachable or report something. `during(playbook, action)` runs `action`
    while the playbook runs (a lease lost, a task canceled); a run whose claim is gone by
    then ends canceled, as the real runner's cancel callback makes it."""

    def __init__(self) -> None:
        self.ran: list[Run] = []
        # The instance's current_step as the store showed it at each step of each run.
        self.shown: list[str | None] = []
        self._scripts: dict[str, list[_Script]] = {}
        self._during: dict[str, Callable[[], None]] = {}

    def script(
        self,
        playbook: str,
        outcome: RunResult,
        steps: tuple[str, ...] = STEPS,
        instance_id: str | None = None,
        times: int | None = None,
    ) -> None:
        """Runs of `playbook` (on `instance_id`, or any) end with `outcome`, `times`
        times or every time."""
        self._scripts.setdefault(playbook, []).append(_Script(outcome, steps, instance_id, times))

    def fail(
        self,
        playbook: str,
        step: str = STEPS[1],
        message: str = "non-zero return code",
        instance_id: str | None = None,
        times: int | None = None,
    ) -> None:
        """Runs of `playbook` fail at `step` with `message`."""
        shown = STEPS[: STEPS.index(step) + 1] if step in STEPS else (*STEPS[:1], step)
        outcome = RunResult("failed", 2, f"/runs/{playbook}", step, message)
        self.script(playbook, outcome, shown, instance_id, times)

    def time_out(self, playbook: str, instance_id: str | None = None) -> None:
        """Runs of `playbook` run past their time limit at the second step."""
        self.script(
            playbook, RunResult("timeout", 254, f"/runs/{playbook}"), STEPS[:2], instance_id
        )

    def unreachable(self, playbook: str, message: str = "ssh: connection refused") -> None:
        """Runs of `playbook` never reach their host."""
        outcome = RunResult("failed", 4, f"/runs/{playbook}", STEPS[0], message, unreachable=True)
        self.script(playbook, outcome, STEPS[:1])

    def during(self, playbook: str, action: Callable[[], None]) -> None:
        self._during[playbook] = action

    def playbooks(self, instance_id: str | None = None) -> list[str]:
        """The playbooks run so far (on `instance_id`, or on any instance), in order."""
        return [r.playbook for r in self.ran if instance_id in (None, r.instance_id)]

    def _scripted(self, playbook: str, instance_id: str) -> _Script | None:
        for script in self._scripts.get(playbook, []):
            if script.instance_id in (None, instance_id) and script.times != 0:
                if script.times is not None:
                    script.times -= 1
                return script
        return None

    def run(
        self,
        ident: str,
        playbook: str,
        instance_id: str,
        extravars: dict[str, Any],
        secrets: dict[str, Any],
        on_step: StepCallback | None = None,
        timeout: float | None = None,
        cancel: Callable[[], bool] | None = None,
        *,
        connection: dict[str, Any],
        environment: dict[str, str] | None = None,
        skip_tags: tuple[str, ...] = (),
    ) -> RunResult:
        self.ran.append(
            Run(ident, playbook, instance_id, dict(extravars), dict(secrets), skip_tags)
        )
        script = self._scripted(playbook, instance_id)
        for step in script.steps if script else STEPS:
            if on_step is not None:
                on_step(step)
                shown = Instance.select(Instance.current_step).where(Instance.id == instance_id)
                self.shown.append(shown.scalar())
        self._during.get(playbook, lambda: None)()
        if cancel is not None and cancel():
            return RunResult("canceled", 254, f"/runs/{playbook}")
        return script.outcome if script else RunResult("successful", 0, f"/runs/{playbook}")


def guest_timeout(method: str) -> errors.TroveSvcError:
    """What the bus raises when a guest does not answer in time."""
    return errors.ServiceUnavailable(f"The guest agent did not answer {method} within 10s.")


def guest_failure(method: str) -> errors.TroveSvcError:
    """What the bus raises when a guest answers with an error."""
    return errors.ServiceUnavailable(f"The guest agent failed {method}: it broke")


def _default_answers() -> dict[str, Any]:
    return {
        "replication_state": {"position": 5, "applied": 5, "streaming": True, "replica": True},
        "promote": {"position": 6},
        "add_replication_account": {"user": "replicator", "slot": "slot_1"},
        "archive_logs": {"archived_until": 0},
        "table_row_counts": {"public.t": 3},
    }


Answer = Callable[[str, Any], Any]


@dataclass
class _Call:
    method: str
    instance_id: str


class FakeBus:
    """The message bus: guests answer each method with a default (`_default_answers`) or
    what a test set with `answer`; `fail` makes a method raise (for one instance, or any)
    as the bus does when a guest fails or does not answer. Queues and casts are kept."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.queues: set[str] = set()
        self.casts: list[tuple[str, dict[str, Any]]] = []
        # What guests were told without an answer: (method, instance id).
        self.told: list[tuple[str, str]] = []
        self.forgotten: list[str] = []
        self._answers: dict[tuple[str, str | None], Answer] = {}
        # What the task managers do with a cast (the task's id and instance), if anything.
        self.on_cast: Callable[[dict[str, Any]], None] = lambda _args: None
        self.url = "amqp://fake/"

    def answer(self, method: str, reply: Any | Answer, instance_id: str | None = None) -> None:
        """`method` answers `reply` (or, if callable, `reply(instance_id, request)`)."""
        answer = reply if callable(reply) else (lambda _instance, _request: reply)
        self._answers[(method, instance_id)] = cast(Answer, answer)

    def fail(
        self, method: str, instance_id: str | None = None, error: errors.TroveSvcError | None = None
    ) -> None:
        """`method` (on `instance_id`, or any) raises `error` (a failure, by default)."""
        raised = error or guest_failure(method)

        def failing(_instance: str, _request: Any) -> Any:
            raise raised

        self._answers[(method, instance_id)] = failing

    def time_out(self, method: str, instance_id: str | None = None) -> None:
        self.fail(method, instance_id, guest_timeout(method))

    def methods(self, instance_id: str | None = None) -> list[str]:
        """The guest calls made so far (to `instance_id`, or to any guest), in order."""
        return [m for m, i in self.asked if instance_id in (None, i)]

    def call_guest(self, instance_id: str, request: Any, context: Any, timeout: float) -> Any:
        method = request.method
        self.asked.append((method, instance_id))
        answer = self._answers.get((method, instance_id)) or self._answers.get((method, None))
        if answer is not None:
            return answer(instance_id, request)
        return _default_answers().get(method, {})

    def add_guest_queues(self, instance_id: str) -> None:
        self.queues.add(instance_id)

    def delete_guest_queues(self, instance_id: str) -> None:
        self.queues.discard(instance_id)

    def cast_guest(self, instance_id: str, message: Any, ttl: float) -> None:
        self.told.append((message.method, instance_id))

    def cast_task(self, method: str, args: dict[str, Any], context: Any) -> None:
        self.casts.append((method, args))
        self.on_cast(args)

    @property
    def keyring(self) -> FakeBus:
        return self

    def forget(self, instance_id: str) -> None:
        self.forgotten.append(instance_id)


@dataclass
class FakeAdmin:
    """The broker's management API: the guests' accounts."""

    accounts: dict[str, str] = field(default_factory=dict)

    def add_guest(self, vhost: str, instance_id: str, password: str) -> None:
        self.accounts[instance_id] = password

    def remove_guest(self, instance_id: str) -> None:
        self.accounts.pop(instance_id, None)


@dataclass
class Effects:
    """Everything a flow is given, with the fakes kept at hand for the test."""

    settings: Settings
    runner: FakeRunner = field(default_factory=FakeRunner)
    bus: FakeBus = field(default_factory=FakeBus)
    admin: FakeAdmin = field(default_factory=FakeAdmin)
    keys: ServiceKeys = field(default_factory=lambda: ServiceKeys(new_key()))

    @property
    def deps(self) -> FlowDeps:
        return FlowDeps(
            self.settings,
            cast(Any, self.runner),
            cast(Any, self.bus),
            self.keys,
            cast(Any, self.admin),
            lambda user, password: f"amqp://{user}@fake/",
        )

    def claim(
        self,
        action: str,
        instance_id: str,
        args: dict[str, Any] | None = None,
        sealed_secrets: str | None = None,
        task_id: str = "t-1",
    ) -> Claim:
        """A task asked for (as the API records it) and claimed by this task manager."""
        now = self.settings.clock()
        tasks.record(
            task_id, instance_id, "p1", action, "alice", "req-1", now, args or {}, sealed_secrets
        )
        return self.take(task_id)

    def take(self, task_id: str) -> Claim:
        """Claim a task recorded already, as this task manager."""
        now = self.settings.clock()
        assert tasks.claim(task_id, OWNER, now, LEASE_SECONDS)
        lease = Lease(task_id, now + LEASE_SECONDS, 2.0, self.settings.clock)
        return Claim(Task.get_by_id(task_id), OWNER, lease)


def canceled_meanwhile(claim: Claim, why: str = "Canceled: the instance is being deleted.") -> None:
    """Another party (a delete) cancels the task; the run learns it at its next renewal."""
    tasks.end_open(claim.task.instance_id, 1.0, tasks.TaskState.CANCELED, why)
    claim.lease.lose()


def taken_over(claim: Claim, by: str = "tm-2") -> None:
    """Another task manager took the task over (this one's lease ran out unrenewed)."""
    Task.update(owner=by).where(Task.id == claim.task.id).execute()
    claim.lease.lose()
