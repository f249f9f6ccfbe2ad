"""The configuration parameters of a datastore version, as its engine describes them.

The registry names what a configuration group may set (`DatastoreSpec.tunables`); the
types, ranges, choices and restart rules come from a throwaway server of the version
(`DatastoreSpec.describe_parameters`), asked once and kept on the version's record. So a
group can never hold a value the engine would refuse. The same record holds what a new
database may be made with (`DatastoreSpec.database_options`): its character sets and
collations, as the engine lists them.
"""

from __future__ import annotations

import logging
from typing import Any

from trove_datastores.base import Discovered, Parameter
from trove_svc.domain import errors
from trove_svc.store.models import DatastoreVersion
from trove_wire import datastores

LOG = logging.getLogger(__name__)


def of_version(version: DatastoreVersion) -> dict[str, Parameter]:
    """The version's tunable parameters by name (described by its engine on first need)."""
    tunables = datastores.get(version.datastore.name).tunables
    return {name: rule for name, rule in _described(version).items() if name in tunables}


def check_database_options(version: DatastoreVersion, database: dict[str, Any]) -> None:
    """400 naming the option and the rule unless the engine takes the character set and
    collation a new database asks for (the engine is asked only if it asks for one)."""
    spec = datastores.get(version.datastore.name)
    for option in ("character_set", "collate"):
        if database.get(option) is None:
            continue
        rule_name = spec.database_options.get(option)
        if rule_name is None:
            raise errors.BadRequest(f"Databases of {spec.name} take no {option}.")
        rule = _described(version).get(rule_name)
        if rule is None:
            raise errors.ServiceUnavailable(
                f"The engine of {spec.name} {version.name} did not list the {option} values "
                "it takes."
            )
        problem = rule.problem(database[option])
        if problem:
            raise errors.BadRequest(f"The {option} of database {database['name']!r}: {problem}.")


def _described(version: DatastoreVersion) -> dict[str, Parameter]:
    """Every rule the version's engine described, by name (asked on first need)."""
    records: list[dict[str, Any]] | None = version.parameters
    spec = datastores.get(version.datastore.name)
    options = set(spec.database_options.values())
    names = {record["name"] for record in records or []}
    if records and names - spec.tunables - options:
        records = None  # described when the registry knew other tunables: again
    if records and "pattern" not in records[0]:
        records = None  # described before strings had their engine's forms: again
    if records and options - names:
        records = None  # described before databases' options were: again
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
