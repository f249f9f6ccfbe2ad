"""The guest's configuration: one JSON file, written mode 0600 by the guest_agent role."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GuestConfig:
    instance_id: str
    transport_url: str
    datastore: str
    connection: dict[str, Any]
    data_dir: str
    pid_file: str
    heartbeat_interval: float = 3.0
    conductor_queue: str = "conductor"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def queue(self) -> str:
        return f"guestagent.{self.instance_id}"

    @classmethod
    def load(cls, path: Path) -> GuestConfig:
        raw = json.loads(path.read_text())
        return cls(**raw)
