"""Nothing waits forever: every waiting state has a limit, and delete works from any state.

Against a private RabbitMQ node; the task manager is stopped (SIGSTOP) to make waits hang.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from tests import support
from tests.broker_node import BrokerNode
from tests.deployments import (
    PROJECT,
    create,
    delete_all,
    deployment,
    error_fault,
    instance_row,
    start,
    store,
    tasks_of,
    wait_until,
)

pytestmark = pytest.mark.integration


def _answers(service: support.Service) -> bool:
    try:
        return service.request("GET", "/", None).status == 200
    except OSError:
        return False


def test_every_wait_has_a_limit_and_delete_works_from_any_state(
    node: BrokerNode, started: list[support.Service]
) -> None:
    service = start(
        started,
        deployment(
            node,
            parts=("api", "conductor"),
            TROVE_SVC_LIMIT_QUEUED="4",
            TROVE_SVC_LIMIT_BUILD="60",
        ),
    )
    token = service.token(PROJECT)
    # No task manager: the create is never taken.
    never_built = create(service, token, "never-built")
    assert "No task manager took the create task within 4 s" in error_fault(
        service, token, never_built
    )
    assert [t["state"] for t in tasks_of(service, never_built)] == ["FAILED"]

    # A task manager that takes tasks and then stops answering.
    service.stop()
    service.part_processes.clear()
    service.extra_env.update(
        TROVE_SVC_LIMIT_QUEUED="600",
        # Room for the real restart and delete below, on a busy machine: the stuck ones are
        # told they began long ago rather than the test waiting a minute.
        TROVE_SVC_LIMIT_REBOOT="60",
        TROVE_SVC_LIMIT_RESIZE="60",
        TROVE_SVC_LIMIT_SHUTDOWN="60",
    )
    for part in ("api", "conductor", "taskmanager"):
        service.start_part(part)
    wait_until(lambda: _answers(service), 30, "the API answers")
    active = create(service, token, "stuck")
    service.wait_for(token, PROJECT, active, support.active_and_healthy, timeout=120)
    (taskmanager,) = service.pids_of("taskmanager")

    def stuck(action: str, body: dict[str, Any] | None, status: str) -> str:
        os.kill(taskmanager, signal.SIGSTOP)
        if body is None:
            answer = service.request("DELETE", f"/v1.0/{PROJECT}/instances/{active}", token)
        else:
            answer = service.request(
                "POST", f"/v1.0/{PROJECT}/instances/{active}/action", token, body
            )
        assert answer.status == 202, answer.body
        with store(service) as db:
            db.execute(
                "UPDATE instance SET status_since = status_since - 600 WHERE id = ?", (active,)
            )
        message = error_fault(service, token, active)
        assert f"stayed {status} for more than 60 s" in message, message
        os.kill(taskmanager, signal.SIGCONT)
        return message

    stuck("resize", {"resize": {"flavorRef": "2"}}, "RESIZE")
    stuck("restart", {"restart": {}}, "REBOOT")
    # A restart from ERROR brings it back; then a stuck delete.
    answer = service.request(
        "POST", f"/v1.0/{PROJECT}/instances/{active}/action", token, {"restart": {}}
    )
    assert answer.status == 202
    service.wait_for(token, PROJECT, active, support.active_and_healthy, timeout=120)
    stuck("delete", None, "SHUTDOWN")
    assert all(t["state"] in ("SUCCEEDED", "FAILED") for t in tasks_of(service, active))

    # A build whose task manager stops answering: BUILD has its limit too (60 s here; the
    # store is told the build began long ago rather than the test waiting a minute).
    stalled = create(service, token, "stalled-build")
    wait_until(
        lambda: instance_row(service, stalled)["current_step"] is not None, 60, "a build starts"
    )
    os.kill(taskmanager, signal.SIGSTOP)
    with store(service) as db:
        db.execute("UPDATE instance SET status_since = status_since - 600 WHERE id = ?", (stalled,))
    message = error_fault(service, token, stalled)
    assert "stayed BUILD for more than 60 s" in message, message
    os.kill(taskmanager, signal.SIGCONT)

    # Delete works from ERROR, and from BUILD (while the create still runs).
    building = create(service, token, "deleted-while-building")
    wait_until(
        lambda: instance_row(service, building)["current_step"] is not None, 60, "a build starts"
    )
    delete_all(service, token, [active, never_built, building, stalled])
    assert [t["state"] for t in tasks_of(service, building)] == ["CANCELED", "SUCCEEDED"]


def test_the_healthcheck_names_what_is_missing(
    node: BrokerNode, started: list[support.Service]
) -> None:
    """For a load balancer: 200 only when the store and the broker answer and a task
    manager and a conductor were seen lately; else 503 naming what is missing."""
    service = start(started, deployment(node, parts=("api", "conductor")))

    def health() -> tuple[int, list[str]]:
        answer = service.request("GET", "/healthcheck", None)
        return answer.status, list(answer.body.get("missing", []))

    wait_until(lambda: _answers(service), 30, "the API answers")
    # The conductor may report a moment after the API answers; the task manager never does.
    wait_until(lambda: health() == (503, ["taskmanager"]), 30, "only the task manager is missing")
    service.start_part("taskmanager")
    wait_until(lambda: health() == (200, []), 30, "the task manager is seen")
    node.stop()
    try:
        began = time.monotonic()
        wait_until(lambda: health()[0] == 503, 30, "the broker's absence shows")
        assert "broker" in health()[1]
        assert time.monotonic() - began < 15
    finally:
        node.start()
    wait_until(lambda: health() == (200, []), 60, "healthy again once the broker is back")
