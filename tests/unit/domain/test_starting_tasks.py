"""Starting a task: what every caller (the API, failover, schedules, a flow's follow-up)
relies on from `tasks.starting`, against a real (SQLite) store with the task managers'
queue stood in for; and that nothing else in trove_svc records a task or casts one."""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import rows
from tests.casts import Casts
from trove_svc.bus.messages import RunTask
from trove_svc.domain import catalog, errors, status, tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.security.caller import Caller
from trove_svc.store.db import open_store
from trove_svc.store.models import Instance, Task, database_proxy
from trove_wire.envelope import Context

# An administrator acting in project p1: the task is p1's, asked by the admin.
CALLER = Caller("p1", Context(project="admin", user="alice", request_id="req-1"))
NOW = 5.0


@pytest.fixture(autouse=True)
def store(tmp_path: Path) -> Iterator[None]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance()
    yield
    database.close()


class NotedCasts(Casts):
    """Casts that note, as each is sent, whether a transaction of the store is open."""

    def __init__(self, noted: list[str]) -> None:
        super().__init__()
        self.noted = noted

    def run_task(self, message: RunTask, context: Context) -> None:
        in_transaction = database_proxy.in_transaction()
        self.noted.append("cast in a transaction" if in_transaction else "cast")
        super().run_task(message, context)


def _move_back() -> None:
    Instance.update(status=status.ACTIVE).where(Instance.id == "i-1").execute()


def test_a_task_is_recorded_queued_as_the_callers_then_cast_once_committed() -> None:
    noted: list[str] = []
    casts = NotedCasts(noted)
    with tasks.starting(casts, CALLER, NOW) as start:  # type: ignore[arg-type]
        start.task("t-1", "i-1", "restart", args={"why": "asked"}, sealed_secrets="sealed")
        assert casts.sent == []  # nothing is cast before the task is in the store
    row = Task.get_by_id("t-1")
    assert (row.state, row.instance_id, row.action, row.args) == (
        TaskState.QUEUED,
        "i-1",
        "restart",
        {"why": "asked"},
    )
    # The task is p1's; alice asked with a token of her own project ("admin").
    assert (row.project_id, row.requested_by, row.requested_by_project) == ("p1", "alice", "admin")
    assert row.request_id == "req-1"
    assert (row.created_at, row.sealed_secrets) == (NOW, "sealed")
    [(message, context)] = casts.sent
    assert (message.task_id, message.instance_id, context) == ("t-1", "i-1", CALLER.context)
    assert noted == ["cast"]


def test_a_started_task_is_run_by_one_task_manager_only(casts: Casts) -> None:
    """A redelivered cast, or one another task manager took too, claims nothing."""
    with tasks.starting(casts, CALLER, NOW) as start:  # type: ignore[arg-type]
        start.task("t-1", "i-1", "restart")
    assert tasks.is_busy("i-1")  # the next request for the instance answers 409
    assert tasks.claim("t-1", "tm-1", now=NOW + 1, lease=30.0)
    assert not tasks.claim("t-1", "tm-2", now=NOW + 2, lease=30.0)
    assert not tasks.claim("t-1", "tm-1", now=NOW + 3, lease=30.0)
    assert Task.get_by_id("t-1").owner == "tm-1"


def test_a_refusal_in_the_block_records_nothing_and_casts_nothing(casts: Casts) -> None:
    with (
        pytest.raises(errors.Conflict),
        tasks.starting(casts, CALLER, NOW, undo=_move_back) as start,  # type: ignore[arg-type]
    ):
        status.move("i-1", status.ACTIVE, status.REBOOT, NOW)
        start.task("t-1", "i-1", "restart")
        raise errors.Conflict("Instance i-1 changed meanwhile; try again.")
    assert Task.select().count() == 0
    assert Instance.get_by_id("i-1").status == status.ACTIVE
    assert casts.sent == []


def test_when_the_bus_is_down_the_tasks_go_and_the_callers_changes_are_undone(
    casts: Casts,
) -> None:
    """Every task of the block goes (one already cast finds nothing to claim), and the
    caller's own changes are put back: the refused request leaves everything as it was."""
    casts.refuse_after = 1
    with (
        pytest.raises(errors.ServiceUnavailable),
        tasks.starting(casts, CALLER, NOW, undo=_move_back) as start,  # type: ignore[arg-type]
    ):
        status.move("i-1", status.ACTIVE, status.REBOOT, NOW)
        start.task("t-1", "i-1", "configure_set")
        start.task("t-2", "i-1", "configure")
    assert casts.task_ids == ["t-1"]
    assert Task.select().count() == 0
    assert not tasks.claim("t-1", "tm-1", now=NOW + 1, lease=30.0)
    assert Instance.get_by_id("i-1").status == status.ACTIVE


def test_the_tasks_are_recorded_in_the_transaction_the_caller_names() -> None:
    """A create records its instance and task in the placement's transaction."""
    happened: list[str] = []
    casts = NotedCasts(happened)

    @contextmanager
    def placing() -> Iterator[None]:
        with database_proxy.atomic():
            happened.append("begin")
            yield
            happened.append("commit")

    with tasks.starting(casts, CALLER, NOW, transaction=placing) as start:  # type: ignore[arg-type]
        start.task("t-1", "i-1", "create")
        happened.append("recorded")
    assert happened == ["begin", "recorded", "commit", "cast"]


# The one module that may do each thing that starts a task; `tasks.starting` is the way
# everything else starts one.
SOURCE = Path(__file__).resolve().parents[3] / "trove_svc"
TASK_ROWS = {"create", "insert", "insert_many", "insert_from", "replace", "bulk_create"}


def _creates_a_task_row(call: ast.Call) -> bool:
    func = call.func
    if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
        return False
    return (func.value.id, func.attr in TASK_ROWS) == ("Task", True) or (
        func.value.id,
        func.attr,
    ) == ("tasks", "record")


def _casts_a_task(call: ast.Call) -> bool:
    """A `RunTask` message made, or handed to a `TaskManagerClient.run_task` (the task
    manager's own `self.run_task` runs a task it claims: it starts none)."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "RunTask"
    if not isinstance(func, ast.Attribute):
        return False
    receiver_is_self = isinstance(func.value, ast.Name) and func.value.id == "self"
    return func.attr == "RunTask" or (func.attr == "run_task" and not receiver_is_self)


def _sends_a_cast(call: ast.Call) -> bool:
    return isinstance(call.func, ast.Attribute) and call.func.attr == "cast_task"


def _publishes_to_the_task_managers(call: ast.Call) -> bool:
    return (
        isinstance(call.func, ast.Attribute)
        and call.func.attr == "publish"
        and any("TASKMANAGER" in ast.dump(arg) for arg in call.args)
    )


OWNERS: dict[str, tuple[Callable[[ast.Call], bool], str]] = {
    "records a task": (_creates_a_task_row, "domain/tasks.py"),
    "casts a task to the task managers": (_casts_a_task, "domain/tasks.py"),
    "sends a cast": (_sends_a_cast, "bus/messages.py"),
    "publishes to the task managers' queue": (_publishes_to_the_task_managers, "bus/client.py"),
}


@functools.cache
def _calls() -> dict[str, list[ast.Call]]:
    """Every call in trove_svc, by module (its path under trove_svc)."""
    found = {}
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
        found[path.relative_to(SOURCE).as_posix()] = calls
    return found


def _modules_that(does: Callable[[ast.Call], bool]) -> set[str]:
    return {module for module, calls in _calls().items() if any(map(does, calls))}


@pytest.mark.parametrize("what", sorted(OWNERS))
def test_one_module_starts_tasks(what: str) -> None:
    """A second way to start a task (a row written, or a cast published, elsewhere) fails
    here: start it with `tasks.starting`."""
    does, owner = OWNERS[what]
    assert _modules_that(does) == {owner}, f"only trove_svc/{owner} {what}"
