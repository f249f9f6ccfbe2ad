"""Fixtures for the integration tests that break things: private RabbitMQ nodes (never the
system broker), and deployments cleaned up after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import support
from tests.broker_node import BrokerNode


def _running_node() -> Iterator[BrokerNode]:
    broker = BrokerNode()
    broker.start()
    yield broker
    broker.destroy()


@pytest.fixture(scope="session")
def shared_node() -> Iterator[BrokerNode]:
    """One private node for the modules that never stop, block or restart it."""
    yield from _running_node()


@pytest.fixture(scope="module")
def node() -> Iterator[BrokerNode]:
    """A private node of the module's own, which its tests stop, block and restart."""
    yield from _running_node()


@pytest.fixture
def started(node: BrokerNode) -> Iterator[list[support.Service]]:
    """Deployments a test starts; all are cleaned up after it."""
    services: list[support.Service] = []
    yield services
    for service in services:
        service.cleanup()
