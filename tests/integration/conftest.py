"""Fixtures for the integration tests that break things: a private RabbitMQ node per test
module (never the system broker), and deployments cleaned up after each test."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests import support
from tests.broker_node import BrokerNode

SCHEDULED_PASSWORD = "Scheduled-test-pw-1"


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


def _stop_after_four_runs(
    service: support.Service, token: str, instance_id: str, schedule_id: str
) -> None:
    path = f"/v1.0/scheduled/instances/{instance_id}"
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        listed = service.request("GET", f"{path}/tasks?limit=1000", token).body.get("tasks", [])
        runs = [t for t in listed if t["action"] == "backup" and t["finished"]]
        prunes = [t for t in listed if t["action"] == "delete_backup"]
        checks = [t for t in listed if t["action"] == "verify_backup"]
        # Each run's prune and restore check are cast after it ends, while the schedule is.
        if len(runs) >= 4 and len(prunes) >= len(runs) - 2 and len(checks) >= len(runs):
            service.request("DELETE", f"{path}/schedules/{schedule_id}", token)
            return
        time.sleep(2)


@pytest.fixture(scope="session")
def scheduled() -> Iterator[dict[str, Any]]:
    """A deployment with a PostgreSQL instance backed up every minute (retention 2, each
    backup checked by a restore), started as early as a test asks for it: the suite's other
    tests run while the schedule does (test_zz_schedules looks at the outcome)."""
    # Ports of its own: its restore checks build instances while other tests build theirs.
    service = support.Service(
        extra_env={"TROVE_SVC_PORT_RANGE_START": "25000", "TROVE_SVC_PORT_RANGE_END": "25499"}
    )
    service.start()
    token = service.token("scheduled")
    body = {
        "instance": {
            "name": "scheduled",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
            "databases": [{"name": "app"}],
            "users": [
                {"name": "app", "password": SCHEDULED_PASSWORD, "databases": [{"name": "app"}]}
            ],
        }
    }
    created = service.request("POST", "/v1.0/scheduled/instances", token, body)
    instance = service.wait_for(
        token, "scheduled", created.body["instance"]["id"], support.active_and_healthy
    )
    # Rows for the restore checks to find.
    with psycopg.connect(
        host="127.0.0.1",
        port=instance["port"],
        user="app",
        password=SCHEDULED_PASSWORD,
        dbname="app",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TABLE kept (v int)")
        conn.execute("INSERT INTO kept SELECT generate_series(1, 3)")
    schedule = service.request(
        "POST",
        f"/v1.0/scheduled/instances/{instance['id']}/schedules",
        token,
        {
            "schedule": {
                "name": "every-minute",
                "cron": "* * * * *",
                "retention_count": 2,
                "verify": True,
            }
        },
    )
    assert schedule.status == 200, schedule.body
    # Four runs are what test_zz_schedules looks at; more would only load the machine.
    threading.Thread(
        target=_stop_after_four_runs,
        args=(service, token, instance["id"], schedule.body["schedule"]["id"]),
        daemon=True,
    ).start()
    yield {
        "service": service,
        "token": token,
        "instance": instance,
        "schedule": schedule.body["schedule"],
    }
    service.cleanup()
