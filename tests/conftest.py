"""Fixtures for tests that need real parts: RabbitMQ (a private vhost) and the service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import support


def _start_order(item: pytest.Item) -> int:
    """The long modules, then the other integration tests, then the unit tests: with one
    module per worker at a time (scripts/test), what starts last should end soon."""
    if item.get_closest_marker("long"):
        return 0
    return 1 if item.get_closest_marker("integration") else 2


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_start_order)  # stable: a module's tests keep their order


@pytest.fixture(scope="session")
def transport_url() -> Iterator[str]:
    if not support.broker_reachable():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672; run scripts/bootstrap.sh")
    vhost = support.create_vhost()
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    support.delete_vhost(vhost)


@pytest.fixture(scope="session")
def service() -> Iterator[support.Service]:
    if not support.broker_reachable():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672; run scripts/bootstrap.sh")
    svc = support.Service()
    svc.start()
    yield svc
    svc.cleanup()
