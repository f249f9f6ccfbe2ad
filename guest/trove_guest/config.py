"""The guest's configuration: one JSON file, mode 0600, written by the guest_agent role.

It holds the instance's own broker account (in `transport_url`) and its message key: the
only credentials on the instance, and the only ones a tenant with root on it could find.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trove_wire import topology
from trove_wire.seal import decode_key


@dataclass(frozen=True)
class GuestConfig:
    instance_id: str
    transport_url: str
    key: str
    datastore: str
    connection: dict[str, Any]
    data_dir: str
    pid_file: str
    heartbeat_interval: float = 3.0
    message_window: float = 60.0
    log_format: str = "text"
    # Where and how backups are made (the repository's "dir" and the engine's settings);
    # empty: this instance keeps none.
    backup: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def queue(self) -> str:
        return topology.guest_queue(self.instance_id)

    @property
    def exchange(self) -> str:
        """The only exchange the guest's account may write: reports and replies."""
        return topology.guest_exchange(self.instance_id)

    @property
    def key_bytes(self) -> bytes:
        return decode_key(self.key)

    @classmethod
    def load(cls, path: Path) -> GuestConfig:
        raw = json.loads(path.read_text())
        return cls(**raw)
