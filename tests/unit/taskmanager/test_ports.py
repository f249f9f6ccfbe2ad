"""Where an instance listens: an address of its own at its datastore's standard port, one
nobody holds here or in the store; else 127.0.0.1 at a port of the range."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import Effects
from trove_svc.store.models import Instance
from trove_svc.taskmanager import ports, provisioning

POSTGRESQL_PORT = 5432


@contextmanager
def _listening(address: str, port: int) -> Iterator[None]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((address, port))
        squatter.listen()
        yield


def _addresses(effects: Effects) -> list[str]:
    network = ipaddress.IPv4Network(effects.settings.local_addresses)
    return [str(a) for a in network.hosts()]


def _where(instance_id: str) -> tuple[str, int]:
    row = Instance.get_by_id(instance_id)
    return row.host, row.port


def test_local_instances_get_addresses_of_their_own_at_the_standard_port(
    effects: Effects,
) -> None:
    first, second = _addresses(effects)[:2]
    rows.instance(id="i-1", host="127.0.0.1")
    rows.instance(id="i-2", host="127.0.0.1")
    assert ports.allocate(effects.settings, "i-1") == POSTGRESQL_PORT
    assert ports.allocate(effects.settings, "i-2") == POSTGRESQL_PORT
    assert _where("i-1") == (first, POSTGRESQL_PORT)
    assert _where("i-2") == (second, POSTGRESQL_PORT)
    # Given once: asked again, it keeps them.
    assert ports.allocate(effects.settings, "i-1") == POSTGRESQL_PORT
    assert _where("i-1") == (first, POSTGRESQL_PORT)


def test_an_address_another_process_listens_on_is_passed_over(effects: Effects) -> None:
    first, second = _addresses(effects)[:2]
    rows.instance(id="i-1", host="127.0.0.1")
    with _listening(first, POSTGRESQL_PORT):
        ports.allocate(effects.settings, "i-1")
    assert _where("i-1") == (second, POSTGRESQL_PORT)


def test_an_address_found_busy_at_start_is_given_up_for_the_next(effects: Effects) -> None:
    first, second = _addresses(effects)[:2]
    rows.instance(id="i-1", host="127.0.0.1")
    ports.allocate(effects.settings, "i-1")
    busy: set[tuple[str, int]] = set()
    ports.reallocate(effects.settings, "i-1", busy)
    assert busy == {(first, POSTGRESQL_PORT)}
    assert _where("i-1") == (second, POSTGRESQL_PORT)


def test_with_no_network_instances_share_127_0_0_1_each_at_a_port_of_the_range(
    effects: Effects,
) -> None:
    settings = replace(effects.settings, local_addresses="")
    rows.instance(id="i-1", host="127.0.0.1")
    rows.instance(id="i-2", host="127.0.0.1")
    one, two = ports.allocate(settings, "i-1"), ports.allocate(settings, "i-2")
    assert one != two
    for port in (one, two):
        assert settings.port_range_start <= port <= settings.port_range_end
    assert _where("i-1") == ("127.0.0.1", one)


def test_when_no_address_of_the_network_is_free_a_port_of_the_range_is_given(
    effects: Effects, caplog: pytest.LogCaptureFixture
) -> None:
    # A network of two addresses, each already taken at the standard port.
    network = ipaddress.IPv4Network(effects.settings.local_addresses)
    small = ipaddress.IPv4Network(f"{network.network_address}/30")
    settings = replace(effects.settings, local_addresses=str(small))
    first, second = (str(a) for a in small.hosts())
    rows.instance(id="i-1", host="127.0.0.1")
    rows.instance(id="i-2", host=first, port=POSTGRESQL_PORT, status="ACTIVE")
    with _listening(second, POSTGRESQL_PORT):
        port = ports.allocate(settings, "i-1")
    assert _where("i-1") == ("127.0.0.1", port)
    assert settings.port_range_start <= port <= settings.port_range_end
    assert f"no address of {small} is free at port 5432" in caplog.text


def test_a_network_whose_addresses_are_taken_one_after_another_is_given_up(
    effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a server on 0.0.0.0 at the standard port would: each probe fails, and allocation
    # stops probing after PROBES_IN_A_ROW of them.
    monkeypatch.setattr(ports, "PROBES_IN_A_ROW", 2)
    first, second = _addresses(effects)[:2]
    rows.instance(id="i-1", host="127.0.0.1")
    with _listening(first, POSTGRESQL_PORT), _listening(second, POSTGRESQL_PORT):
        port = ports.allocate(effects.settings, "i-1")
    assert _where("i-1") == ("127.0.0.1", port) and port != POSTGRESQL_PORT


def test_an_instance_on_a_server_of_its_own_listens_at_the_standard_port(
    effects: Effects,
) -> None:
    rows.instance(id="i-1", provider="openstack", host=None)
    rows.instance(id="i-2", provider="openstack", host="192.0.2.9", port=POSTGRESQL_PORT)
    assert ports.allocate(effects.settings, "i-1") == POSTGRESQL_PORT
    assert _where("i-1") == (None, POSTGRESQL_PORT)


@pytest.mark.parametrize("is_public", [False, True])
def test_a_datastore_on_an_address_of_its_own_listens_there_alone(
    effects: Effects, is_public: bool
) -> None:
    rows.instance(id="i-1", host="127.0.0.1", access={"is_public": is_public})
    ports.allocate(effects.settings, "i-1")
    instance = Instance.get_by_id("i-1")
    given = provisioning.instance_vars(effects.settings, instance)
    assert given["postgresql_bind_addresses"] == [instance.host]
    assert given["postgresql_port"] == POSTGRESQL_PORT


def test_a_datastore_without_an_address_of_its_own_listens_on_loopback(effects: Effects) -> None:
    settings = replace(effects.settings, local_addresses="")
    rows.instance(id="i-1", host="127.0.0.1")
    port = ports.allocate(settings, "i-1")
    given = provisioning.instance_vars(settings, Instance.get_by_id("i-1"))
    assert (given["postgresql_bind_addresses"], given["postgresql_port"]) == (["127.0.0.1"], port)


def test_on_a_pool_host_with_a_network_each_instance_has_an_address_of_it(
    effects: Effects, tmp_path: Path
) -> None:
    inventory = tmp_path / "pool.yml"
    inventory.write_text(
        "all:\n  hosts:\n"
        "    db1: {ansible_host: 192.0.2.5, trove_addresses: 192.0.2.64/30}\n"
        "    db2: {ansible_host: 192.0.2.6}\n"
    )
    settings = replace(effects.settings, compute_provider="ssh", host_pool=str(inventory))
    rows.instance(id="i-1", provider="ssh", server="db1", host="192.0.2.5")
    rows.instance(id="i-2", provider="ssh", server="db2", host="192.0.2.6")
    assert ports.allocate(settings, "i-1") == POSTGRESQL_PORT
    assert _where("i-1") == ("192.0.2.65", POSTGRESQL_PORT)
    given = provisioning.instance_vars(settings, Instance.get_by_id("i-1"))
    # It listens there alone; the provider's role adds the address to the host.
    assert given["postgresql_bind_addresses"] == ["192.0.2.65"]
    assert given["compute_ssh_address"] == "192.0.2.65"
    assert given["compute_ssh_address_interface"] == "lo"
    # Without a network: the host's address, at a port of the range, and nothing to add.
    port = ports.allocate(settings, "i-2")
    assert _where("i-2") == ("192.0.2.6", port)
    assert settings.port_range_start <= port <= settings.port_range_end
    given = provisioning.instance_vars(settings, Instance.get_by_id("i-2"))
    assert given["postgresql_bind_addresses"] == ["127.0.0.1", "192.0.2.6"]
    assert given["compute_ssh_address"] == ""


def test_a_port_taken_at_once_for_another_host_is_given_up_for_the_next(
    effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another task manager writes the same port for an instance on another host between
    # this one's look at the store and its write: the store's (host, port) rule lets both.
    settings = replace(effects.settings, local_addresses="")
    first = settings.port_range_start
    rows.instance(id="i-1", host="127.0.0.1")
    rows.instance(id="i-other", host="192.0.2.6")
    probe = ports._bindable_here

    def probed_while_another_takes_it(address: str, port: int) -> bool:
        if port == first:
            Instance.update(port=first).where(Instance.id == "i-other").execute()
        return probe(address, port)

    monkeypatch.setattr(ports, "_bindable_here", probed_while_another_takes_it)
    port = ports.allocate(settings, "i-1")
    assert port != first and _where("i-1") == ("127.0.0.1", port)
    assert _where("i-other") == ("192.0.2.6", first)
