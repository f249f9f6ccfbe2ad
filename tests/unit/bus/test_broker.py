"""The URL the service connects to RabbitMQ with, from the transport URL it is given."""

from __future__ import annotations

from pathlib import Path

import pika
import pytest

from trove_svc.bus.broker import Account, amqp_url
from trove_svc.process.settings import Settings

MADE = Account("trove-svc-made", "generated/pw")


@pytest.mark.parametrize(
    ("transport_url", "expected"),
    [
        # Trove's documented form: the operator's account on the broker's default vhost.
        ("amqp://trove:s3cret@rabbit.example:5672/", "amqp://trove:s3cret@rabbit.example:5672/%2F"),
        (
            "amqp://trove:s3cret@rabbit.example:5672/dbaas",
            "amqp://trove:s3cret@rabbit.example:5672/dbaas",
        ),
    ],
)
def test_an_account_the_url_names_is_used_on_the_vhost_it_names_or_the_default(
    tmp_path: Path, transport_url: str, expected: str
) -> None:
    settings = Settings(state_dir=tmp_path, transport_url=transport_url)
    url = amqp_url(settings, None)
    assert url == expected
    assert pika.URLParameters(url).virtual_host == settings.vhost


def test_without_an_account_in_the_url_the_made_one_is_used_on_the_deployments_vhost(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path, transport_url="amqp://127.0.0.1:5672/")
    url = amqp_url(settings, MADE)
    parameters = pika.URLParameters(url)
    assert parameters.virtual_host == settings.vhost and settings.vhost.startswith("trove-svc-")
    assert parameters.credentials.username == MADE.user  # type: ignore[attr-defined]
    assert parameters.credentials.password == MADE.password  # type: ignore[attr-defined]


CLUSTER = "amqp://trove:pw@rabbit-1:5672,rabbit-2:5673,rabbit-3/dbaas"


def test_a_clusters_nodes_each_get_the_account_and_vhost() -> None:
    from trove_wire.amqp import broker_urls, connection_parameters

    assert broker_urls(CLUSTER) == [
        "amqp://trove:pw@rabbit-1:5672/dbaas",
        "amqp://trove:pw@rabbit-2:5673/dbaas",
        "amqp://trove:pw@rabbit-3/dbaas",
    ]
    assert broker_urls("amqp://rabbit:5672/") == ["amqp://rabbit:5672/"]
    nodes = connection_parameters(CLUSTER, heartbeat=7)
    # Every node, in turn from one of them, each as the URL says.
    assert sorted((p.host, p.port) for p in nodes) == [
        ("rabbit-1", 5672),
        ("rabbit-2", 5673),
        ("rabbit-3", 5672),
    ]
    order = [p.host for p in nodes]
    rotation = ["rabbit-1", "rabbit-2", "rabbit-3"] * 2
    assert any(rotation[i : i + 3] == order for i in range(3))
    assert {(p.virtual_host, p.credentials.username, p.heartbeat) for p in nodes} == {
        ("dbaas", "trove", 7)
    }


def test_a_cluster_in_the_transport_url_keeps_every_node_with_the_made_account(
    tmp_path: Path,
) -> None:
    settings = Settings(
        state_dir=tmp_path, transport_url="amqp://rabbit-1:5672,rabbit-2:5672/", broker_vhost="v"
    )
    assert amqp_url(settings, MADE) == (
        "amqp://trove-svc-made:generated%2Fpw@rabbit-1:5672,rabbit-2:5672/v"
    )
    assert settings.management_url == "http://rabbit-1:15672,http://rabbit-2:15672"
