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
