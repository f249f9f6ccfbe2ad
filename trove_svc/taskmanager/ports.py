"""Where an instance listens: an address of its own at its datastore's standard port where
its provider gives one (trove_svc.compute.addressing), else its host's address at a port of
the deployment's range. No two instances of the store share an address and port (the
store's unique index settles races between task managers), and one on this machine is
given only what it can bind here."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator

import peewee

from trove_svc import compute
from trove_svc.domain import errors
from trove_svc.process.settings import Settings
from trove_svc.store.models import Instance
from trove_wire import datastores

LOG = logging.getLogger(__name__)

# The machine's own loopback addresses (its servers', and Debian's for its hostname): never
# an instance's.
NEVER_GIVEN = frozenset(
    {ipaddress.IPv4Address(compute.LOCAL_SHARED_ADDRESS), ipaddress.IPv4Address("127.0.1.1")}
)


# Addresses found taken here one after another before the network is given up as taken at
# that port (a server on 0.0.0.0 there takes all of them): the probes stay a few ms.
PROBES_IN_A_ROW = 256


def _bindable_here(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the datastores do: a port whose last connection is in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def standard_port(instance: Instance) -> int:
    return datastores.get(instance.datastore_version.datastore.name).default_port


def _take(instance_id: str, address: str | None, port: int) -> bool:
    try:
        Instance.update(host=address, port=port).where(Instance.id == instance_id).execute()
    except peewee.IntegrityError:
        return False
    return True


def _own_addresses(addressing: compute.Addressing, port: int) -> Iterator[str]:
    """The network's addresses no instance of the store has at `port`, in order."""
    assert addressing.network is not None
    taken = {row.host for row in Instance.select(Instance.host).where(Instance.port == port)}
    for address in addressing.network.hosts():
        if address in NEVER_GIVEN or str(address) in taken:
            continue
        yield str(address)


def _take_own_address(
    instance_id: str, addressing: compute.Addressing, port: int, busy: set[tuple[str, int]]
) -> bool:
    taken_in_a_row = 0
    for address in _own_addresses(addressing, port):
        if (address, port) in busy:
            continue
        if addressing.here and not _bindable_here(address, port):
            taken_in_a_row += 1
            if taken_in_a_row == PROBES_IN_A_ROW:
                return False
            continue
        taken_in_a_row = 0
        if _take(instance_id, address, port):
            return True
    return False


def _held_by_another(instance_id: str, port: int) -> bool:
    return bool(
        Instance.select().where((Instance.port == port) & (Instance.id != instance_id)).exists()
    )


def _take_port(
    settings: Settings, instance_id: str, address: str | None, busy: set[tuple[str, int]]
) -> int:
    # Ports of the range stay unique across the store, whatever the host: instances of
    # hosts that are one machine (a pool on loopback) never meet. The store keeps only a
    # (host, port) unique, so a port is looked for again once written: of two task
    # managers that took it at once for two hosts, one that finds the other there gives it
    # up and tries the next (both may: then both do).
    taken = {row.port for row in Instance.select(Instance.port).where(Instance.port.is_null(False))}
    for port in range(settings.port_range_start, settings.port_range_end + 1):
        if port in taken or (str(address), port) in busy:
            continue
        if not _bindable_here(compute.LOCAL_SHARED_ADDRESS, port):
            continue
        if not _take(instance_id, address, port):
            continue
        if not _held_by_another(instance_id, port):
            return port
        Instance.update(port=None).where(Instance.id == instance_id).execute()
        LOG.info(
            "instance %s: port %d was taken at once for another; trying the next", instance_id, port
        )
    raise errors.Unprocessable("No free port is left for a new instance.")


def allocate(settings: Settings, instance_id: str, busy: set[tuple[str, int]] | None = None) -> int:
    """Give the instance its address and port (once: a given one is kept); `busy` holds
    those found taken when a datastore started. Returns the port."""
    instance = Instance.get_by_id(instance_id)
    if instance.port is not None:
        return int(instance.port)
    busy = busy or set()
    port = standard_port(instance)
    addressing = compute.addressing(settings, instance)
    if addressing.own_server:
        # Its server's address, learned while building: nothing else listens there.
        Instance.update(port=port).where(Instance.id == instance_id).execute()
        return port
    if addressing.network is not None:
        if _take_own_address(instance_id, addressing, port, busy):
            return port
        LOG.warning(
            "instance %s: no address of %s is free at port %d; it listens on %s at a port "
            "of its own",
            instance_id,
            addressing.network,
            port,
            addressing.shared,
        )
    return _take_port(settings, instance_id, addressing.shared, busy)


def reallocate(settings: Settings, instance_id: str, busy: set[tuple[str, int]]) -> int:
    """Give up the instance's address and port (found busy when the datastore started, and
    added to `busy`) for others. Returns the new port."""
    instance = Instance.get_by_id(instance_id)
    busy.add((str(instance.host), int(instance.port)))
    shared = compute.addressing(settings, instance).shared
    given_up: dict[peewee.Field, str | None] = {Instance.port: None}
    if shared is not None:
        given_up[Instance.host] = shared
    Instance.update(given_up).where(Instance.id == instance_id).execute()
    return allocate(settings, instance_id, busy)
