"""The transport URL as Trove's docs write it, `amqp://USER:PASSWORD@HOST:5672/`: the
operator's account on the broker's default vhost. On a private RabbitMQ node, whose `/`
is the test's alone (the system broker's `/` may serve a running deployment)."""

from __future__ import annotations

import secrets
import subprocess

import pytest

from tests import deployments, support
from tests.broker_node import BrokerNode
from trove_wire import topology

pytestmark = pytest.mark.integration


def _operator_account(node: BrokerNode, user: str, tags: str) -> str:
    """An account made as an operator makes one, with every permission on `/`; its URL."""
    password = secrets.token_urlsafe(16)
    assert node.api("PUT", f"/api/users/{user}", {"password": password, "tags": tags})[0] in (
        201,
        204,
    )
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    assert node.api("PUT", f"/api/permissions/%2F/{user}", everything)[0] in (201, 204)
    return f"amqp://{user}:{password}@127.0.0.1:{node.amqp_port}/"


def _deployment(node: BrokerNode, transport_url: str) -> support.Service:
    service = deployments.deployment(node)
    service.transport_url = transport_url
    return service


def test_an_administrator_account_without_a_vhost_runs_instances_on_the_default_one(
    node: BrokerNode, started: list[support.Service]
) -> None:
    url = _operator_account(node, "trove-operator", "administrator")
    service = deployments.start(started, _deployment(node, url))
    assert service.settings().vhost == "/"
    assert support.broker_has(service.amqp_url, queue=topology.TASKMANAGER)
    token = service.token(deployments.PROJECT)
    made = service.create_healthy(token, deployments.PROJECT, "cache", datastore={"type": "redis"})
    # Its guest has an account of its own, made with the operator's, on `/`.
    status, permissions = node.api("GET", f"/api/users/guest-{made['id']}/permissions")
    assert status == 200 and [p["vhost"] for p in permissions] == ["/"]
    deleted = service.request(
        "DELETE", f"/v1.0/{deployments.PROJECT}/instances/{made['id']}", token
    )
    assert deleted.status == 202
    service.wait_gone(token, deployments.PROJECT, made["id"])


def test_an_account_that_is_no_administrator_is_refused_saying_what_to_change(
    node: BrokerNode, started: list[support.Service]
) -> None:
    url = _operator_account(node, "trove-plain", "")
    service = _deployment(node, url)
    started.append(service)
    with pytest.raises(subprocess.CalledProcessError) as refused:
        service.setup()
    said = refused.value.stderr
    assert "'trove-plain' is not a RabbitMQ administrator" in said, said
    assert "rabbitmqctl set_user_tags trove-plain administrator" in said
