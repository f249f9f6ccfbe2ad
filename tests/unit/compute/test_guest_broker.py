"""Guests on other hosts reach the broker at the address the operator gives, under their
own account and the deployment's vhost."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from trove_svc.bus.broker import Account
from trove_svc.process.components import Runtime
from trove_svc.process.settings import Settings
from trove_svc.security.keys import KeyRing, ServiceKeys


def _runtime(**settings: str) -> Runtime:
    keys = ServiceKeys(os.urandom(32))
    return Runtime(
        settings=Settings(
            state_dir=Path("/var/lib/trove-svc"),
            transport_url="amqp://127.0.0.1:5672/",
            broker_vhost="deployment-a",
            **settings,
        ),
        keys=keys,
        account=Account("trove-svc", "service-pw"),
        keyring=KeyRing(keys),
    )


def test_without_a_guest_address_guests_use_the_transports() -> None:
    url = urlsplit(_runtime().guest_url("guest-i1", "pw/with:odd@chars"))
    assert (url.hostname, url.port, url.path) == ("127.0.0.1", 5672, "/deployment-a")
    assert url.username == "guest-i1"


def test_guests_on_other_hosts_use_the_address_given() -> None:
    runtime = _runtime(guest_broker_address="10.0.0.5:5671")
    url = urlsplit(runtime.guest_url("guest-i1", "pw/with:odd@chars"))
    assert (url.hostname, url.port, url.path) == ("10.0.0.5", 5671, "/deployment-a")
    assert (url.username, url.password) == ("guest-i1", "pw%2Fwith%3Aodd%40chars")
    # The control plane itself keeps the transport's address and its own account.
    assert urlsplit(runtime.url).hostname == "127.0.0.1"
    assert urlsplit(runtime.url).username == "trove-svc"
