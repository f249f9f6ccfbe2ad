"""What every service of the OpenStack replay shares: its vocabulary and the cloud's state.

The replay (tests/openstack_replay.py) is one class built from a mixin per service; each
mixin's handlers read and change the `ReplayState` below, under the replay's lock.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

# The one path segment an item's id fills, in every service's routes.
UID = r"(?P<id>[^/]+)"


@dataclass(frozen=True)
class Call:
    """One request as the replay received it; `path` is below the service's root."""

    method: str
    service: str
    path: str
    query: dict[str, list[str]]
    body: Any


class ApiError(Exception):
    """An answer other than success, in the answering service's own error shape."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass
class Reply:
    """A handler's answer, before the wire encodes it."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[re.Match[str], dict[str, list[str]], Any], Reply]
# (method, path pattern below the service's root, needs a token, handler)
Route = tuple[str, str, bool, Handler]


def timestamp() -> str:
    """Now, as the services write it in their bodies."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hex_id() -> str:
    return uuid.uuid4().hex


def new_uuid() -> str:
    return str(uuid.uuid4())


def matches_filters(item: Json, query: dict[str, list[str]], fields: tuple[str, ...]) -> bool:
    """Neutron's and Cinder's list filters: a field equals one of the values asked for."""
    for name in fields:
        wanted = query.get(name)
        if wanted is None:
            continue
        value = item.get(name)
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        if text not in wanted:
            return False
    return True


class ReplayState:
    """The cloud's contents and the knobs a test turns; the services' handlers share them."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        password: str,
        project: str,
        keypairs: tuple[str, ...],
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.project_name = project
        self.project_id = hex_id()
        self.user_id = hex_id()
        self.server_build_polls = 1
        self.server_outcome = "ACTIVE"
        self.server_fault = "No valid host was found. There are not enough hosts available."
        self.volume_outcome = "available"
        self._tokens: set[str] = set()
        self.servers: dict[str, Json] = {}
        self.volumes: dict[str, Json] = {}
        self.security_groups: dict[str, Json] = {}
        self.security_group_rules: dict[str, Json] = {}
        self.ports: dict[str, Json] = {}
        self.keypairs = set(keypairs)
        # Ids of everything ever made through the API, in order, whether it still exists.
        self.created: dict[str, list[str]] = {"servers": [], "volumes": [], "security_groups": []}
        self._server_polls: dict[str, int] = {}
        self.networks: dict[str, Json] = {}
        self.subnets: dict[str, Json] = {}
        self._addresses: Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address] = iter(())
        self.images: dict[str, Json] = {}
        self.flavors: dict[str, Json] = {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _listed(
        self, collection: dict[str, Json], query: dict[str, list[str]], fields: tuple[str, ...]
    ) -> list[Json]:
        return [item for item in collection.values() if matches_filters(item, query, fields)]
