"""The configuration parameters each datastore accepts, with their types and bounds.

Configuration groups (a later feature) validate against these; clients list them with
`openstack database configuration parameter list`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # integer, float, string, boolean
    restart_required: bool
    min: int | float | None = None
    max: int | float | None = None

    def view(self, datastore_version_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "restart_required": self.restart_required,
            "datastore_version_id": datastore_version_id,
        }
        if self.min is not None:
            body["min"] = self.min
        if self.max is not None:
            body["max"] = self.max
        return body


PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "postgresql": (
        Parameter("max_connections", "integer", True, 1, 10_000),
        Parameter("shared_buffers", "string", True),
        Parameter("work_mem", "string", False),
        Parameter("maintenance_work_mem", "string", False),
        Parameter("effective_cache_size", "string", False),
        Parameter("random_page_cost", "float", False, 0, 100),
        Parameter("statement_timeout", "integer", False, 0, 2_147_483_647),
        Parameter("log_min_duration_statement", "integer", False, -1, 2_147_483_647),
        Parameter("autovacuum", "boolean", False),
    ),
}


def for_datastore(datastore: str) -> tuple[Parameter, ...]:
    return PARAMETERS.get(datastore, ())
