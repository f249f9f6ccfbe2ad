"""What each node's /healthcheck says: what is missing, and what the node sees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trove_svc.domain import errors
from trove_svc.process import health, workers
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store


class Bus:
    def __init__(self, node: str | None) -> None:
        self.node = node

    def check(self) -> str:
        if self.node is None:
            raise errors.ServiceUnavailable("RabbitMQ does not answer.")
        return self.node


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield Settings(state_dir=tmp_path, worker_seen_within=10, clock=lambda: 100.0)
    database.close()


def test_a_node_sees_every_nodes_workers_and_the_broker_node_it_reaches(
    settings: Settings,
) -> None:
    for node in ("a", "b"):
        workers.seen(f"taskmanager:{node}", workers.TASKMANAGER, 95.0)
        workers.seen(f"taskmanager:{node}", workers.TASKMANAGER, 96.0)  # again: updated
    workers.seen("conductor:a", workers.CONDUCTOR, 95.0)
    workers.seen("conductor:b", workers.CONDUCTOR, 80.0)  # too long ago
    healthy, report = health.check(settings, Bus("rabbit-2:5672"))  # type: ignore[arg-type]
    assert healthy and report["missing"] == []
    assert report["sees"] == {
        "store": "sqlite",
        "broker_node": "rabbit-2:5672",
        "taskmanagers": 2,
        "conductors": 1,
    }


def test_what_is_missing_is_named(settings: Settings) -> None:
    workers.seen("conductor:a", workers.CONDUCTOR, 95.0)
    healthy, report = health.check(settings, Bus(None))  # type: ignore[arg-type]
    assert not healthy and report["missing"] == ["broker", "taskmanager"]
    assert report["sees"]["broker_node"] is None and report["sees"]["taskmanagers"] == 0
