"""The task manager takes casts sealed with the control key only: one sealed with any
other key (a guest's, say) or not sealed at all is dropped and counted, and no task runs,
against a real (SQLite) store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from trove_svc.domain import tasks
from trove_svc.process.settings import Settings
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import Task
from trove_svc.taskmanager import service
from trove_wire import seal
from trove_wire.amqp import Delivery
from trove_wire.envelope import Context, Envelope


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[service.TaskManager]:
    settings = Settings(state_dir=tmp_path, taskmanager_workers=1)
    database = open_store(settings.effective_database_url)
    deps: Any = SimpleNamespace(
        settings=settings,
        keys=ServiceKeys(seal.new_key()),
        bus=SimpleNamespace(url="amqp://nowhere:1/"),
    )
    yield service.TaskManager(deps)
    database.close()


def _cast(key: bytes, task_id: str) -> Delivery:
    envelope = Envelope.new("run_task", {"task_id": task_id, "instance_id": "i-1"}, Context())
    return Delivery(body=seal.seal(key, seal.CAST, envelope.to_json()))


def test_forged_and_unsealed_casts_run_nothing(
    manager: service.TaskManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    monkeypatch.setattr(manager, "run_task", lambda task_id, **_: ran.append(task_id))
    tasks.record("t-1", "i-1", "p", "restart", "alice", "", 0.0)

    manager.on_cast(_cast(seal.new_key(), "t-1"))  # a key no control plane holds
    manager.on_cast(Delivery(body=b'{"method": "run_task", "args": {"task_id": "t-1"}}'))
    assert ran == []
    assert manager.refused.snapshot() == {"auth": 1, "malformed": 1}
    assert Task.get_by_id("t-1").state == "QUEUED"

    manager.on_cast(_cast(manager.deps.keys.control, "t-1"))  # the control plane's own
    assert ran == ["t-1"]
