"""Fixtures for the integration tests that break things: a private RabbitMQ node per test
module (never the system broker), and deployments cleaned up after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import support
from tests.broker_node import BrokerNode


@pytest.fixture(scope="module")
def node() -> Iterator[BrokerNode]:
    broker = BrokerNode()
    broker.start()
    yield broker
    broker.destroy()


@pytest.fixture
def started(node: BrokerNode) -> Iterator[list[support.Service]]:
    """Deployments a test starts; all are cleaned up after it."""
    services: list[support.Service] = []
    yield services
    for service in services:
        service.cleanup()
