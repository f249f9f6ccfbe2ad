"""The configuration parameters of a datastore version, as its engine describes them.

The registry names what a configuration group may set (`DatastoreSpec.tunables`); the
types, ranges, choices and restart rules come from a throwaway server of the version
(`DatastoreSpec.describe_parameters`), asked once and kept on the version's record. So a
group can never hold a value the engine would refuse.
"""

from __future__ import annotations

import logging
from typing import Any

from trove_svc import errors
from trove_svc.store.models import DatastoreVersion
from trove_wire import datastores
from trove_wire.datastores.base import Discovered, Parameter

LOG = logging.getLogger(__name__)


def of_version(version: DatastoreVersion) -> dict[str, Parameter]:
    """The version's parameters by name (described by its engine on first need)."""
    records: list[dict[str, Any]] | None = version.parameters
    spec = datastores.get(version.datastore.name)
    if records and {record["name"] for record in records} - spec.tunables:
        records = None  # described when the registry knew other tunables: again
    if records and "pattern" not in records[0]:
        records = None  # described before strings had their engine's forms: again
    if not records:
        try:
            described = spec.describe_parameters(Discovered(version.name, version.bin_dir))
        except Exception as exc:  # any failure of the throwaway server
            LOG.error("describing %s %s failed: %s", spec.name, version.name, exc)
            raise errors.ServiceUnavailable(
                f"The parameters of {spec.name} {version.name} could not be read from the "
                "engine; try again, and see the service log if it persists."
            ) from exc
        records = [parameter.record() for parameter in described]
        DatastoreVersion.update(parameters=records).where(
            DatastoreVersion.id == version.id
        ).execute()
    return {record["name"]: Parameter.from_record(record) for record in records}


def checked(version: DatastoreVersion, values: dict[str, Any]) -> dict[str, Any]:
    """`values` if the engine takes every one; else 400 naming the parameter and the rule."""
    known = of_version(version)
    for name, value in values.items():
        rule = known.get(name)
        if rule is None:
            raise errors.BadRequest(
                f"The parameter {name!r} cannot be set on {version.datastore.name} "
                f"{version.name}; see its parameter list for those that can."
            )
        problem = rule.problem(value)
        if problem:
            raise errors.BadRequest(f"The value of parameter {name!r}: {problem}.")
    return dict(values)
