"""What the datastores' drivers share (each is `trove_datastores.<name>.driver`). A driver
has `health()` and one method per call of `trove_wire.contract`, named as the call and
taking its arguments; the agent dispatches to them by name. Drivers raise the contract's
errors (`NotFound`, `Conflict`, ...)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from trove_wire import datastores
from trove_wire.contract import Conflict, Invalid, NotFound, NotSupported

HEALTHY = "HEALTHY"
SHUTDOWN = "SHUTDOWN"
ERROR = "ERROR"

__all__ = [
    "ERROR",
    "HEALTHY",
    "SHUTDOWN",
    "Conflict",
    "DatastoreDriver",
    "FencingDriver",
    "Invalid",
    "NotFound",
    "NotSupported",
    "same_setting",
    "typed_value",
]


def typed_value(text: str) -> int | float | str:
    """A parameter's value as the driver binds it: a number where it reads as one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def same_setting(shown: str, wanted: str) -> bool:
    """Whether a setting the engine shows is the value applied (numbers compare as such)."""
    left, right = typed_value(shown), typed_value(wanted)
    if isinstance(left, str) or isinstance(right, str):
        return str(left).lower() == str(right).lower()
    return abs(left - right) < 1e-9


class DatastoreDriver(Protocol):
    def health(self) -> tuple[str, str | None]:
        """Return (operating status, message): connect and run a trivial query."""


class FencingDriver(DatastoreDriver, Protocol):
    """What a driver of a datastore that fails over (its spec's `failover` capability)
    also has: the source's lease fences it and lets it write again, and its watchdog stops
    the server when the guest itself hangs."""

    def fence_writes(self, base_dir: str) -> bool:
        """Refuse writes from now on; whether anything changed."""

    def take_writes(self, base_dir: str) -> None:
        """Take writes again, after a lease's fence."""

    @staticmethod
    def hard_stop(base_dir: str) -> tuple[Path, int]:
        """The server's pid file, and the signal that stops it at once."""


def load_driver(datastore: str, connection: dict[str, Any]) -> DatastoreDriver:
    """The driver the registry names for `datastore` (each imports only its own client)."""
    try:
        module_name, class_name = datastores.get(datastore).driver.split(":")
    except datastores.UnknownDatastore as exc:
        raise NotSupported(f"no guest driver for datastore {datastore!r}") from exc
    driver: DatastoreDriver = getattr(importlib.import_module(module_name), class_name)(connection)
    return driver
