"""Port allocation: unique in the store (across every host, so that two instances never
meet on one address), and free on this machine."""

from __future__ import annotations

import socket

import peewee

from trove_svc.domain import errors
from trove_svc.process.settings import Settings
from trove_svc.store.models import Instance


def _free_on_host(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the datastores do: a port whose last connection is in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate(settings: Settings, instance_id: str) -> int:
    """Give the instance a port; the unique index settles races between task managers."""
    current = Instance.get_by_id(instance_id).port
    if current is not None:
        return int(current)
    taken = {row.port for row in Instance.select(Instance.port).where(Instance.port.is_null(False))}
    for port in range(settings.port_range_start, settings.port_range_end + 1):
        if port in taken or not _free_on_host(port):
            continue
        try:
            Instance.update(port=port).where(Instance.id == instance_id).execute()
        except peewee.IntegrityError:
            continue
        return port
    raise errors.Unprocessable("No free port is left for a new instance.")


def reallocate(settings: Settings, instance_id: str) -> int:
    """Give up the instance's port (found busy when the datastore started) for another."""
    Instance.update(port=None).where(Instance.id == instance_id).execute()
    return allocate(settings, instance_id)
