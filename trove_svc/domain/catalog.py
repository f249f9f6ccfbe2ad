"""The catalog: datastores, their versions and the flavors, registered at start and looked
up here, and only here (the API and the instance service both ask this module)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from trove_svc.domain import errors, parameter_rules
from trove_svc.store.models import Datastore, DatastoreVersion, Flavor
from trove_wire import datastores

DEFAULT_FLAVORS = (
    ("1", "small", 512, 1),
    ("2", "medium", 1024, 1),
    ("3", "large", 2048, 2),
)


@dataclass(frozen=True)
class HostDatastore:
    name: str
    version: str
    bin_dir: str


def host_datastores() -> list[HostDatastore]:
    """Every registered datastore whose binaries this host has."""
    found = []
    for spec in datastores.REGISTRY.values():
        discovered = spec.discover()
        if discovered is not None:
            found.append(HostDatastore(spec.name, discovered.version, discovered.bin_dir))
    return found


def _stable_id(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "trove-svc:" + ":".join(parts)))


def ensure_defaults(found: list[HostDatastore]) -> None:
    """Register the host's datastores and the default flavors (idempotent)."""
    for flavor_id, name, ram, vcpus in DEFAULT_FLAVORS:
        Flavor.get_or_create(id=flavor_id, defaults={"name": name, "ram": ram, "vcpus": vcpus})
    for host in found:
        datastore, _ = Datastore.get_or_create(
            name=host.name, defaults={"id": _stable_id(host.name)}
        )
        version, created = DatastoreVersion.get_or_create(
            datastore=datastore,
            name=host.version,
            defaults={"id": _stable_id(host.name, host.version), "bin_dir": host.bin_dir},
        )
        if not created and version.bin_dir != host.bin_dir:
            version.bin_dir = host.bin_dir
            version.parameters = None  # other binaries: ask their engine again
            version.save()
        if datastore.default_version_id is None:
            datastore.default_version_id = version.id
            datastore.save()


# Flavors


def flavors() -> list[Flavor]:
    return list(Flavor.select().order_by(Flavor.ram, Flavor.id))


def flavor(ref: str | int) -> Flavor:
    """A flavor by id, or by a link to it (troveclient sends either)."""
    flavor_id = str(ref).rstrip("/").rsplit("/", 1)[-1]
    row = Flavor.get_or_none(Flavor.id == flavor_id)
    if row is None:
        raise errors.NotFound(f"Flavor {flavor_id} could not be found.")
    return row


# Datastores and versions


def datastore(name_or_id: str) -> Datastore:
    row = Datastore.get_or_none((Datastore.id == name_or_id) | (Datastore.name == name_or_id))
    if row is None:
        raise errors.NotFound(f"Datastore '{name_or_id}' cannot be found.")
    return row


def versions(of: Datastore) -> list[DatastoreVersion]:
    return list(of.versions.order_by(DatastoreVersion.name))


def datastores_with_versions() -> list[tuple[Datastore, list[DatastoreVersion]]]:
    rows = list(Datastore.select().order_by(Datastore.name))
    by_datastore: dict[str, list[DatastoreVersion]] = {row.id: [] for row in rows}
    for version in DatastoreVersion.select().order_by(DatastoreVersion.name):
        by_datastore.setdefault(version.datastore_id, []).append(version)
    return [(row, by_datastore[row.id]) for row in rows]


def version_by_id(version_id: str) -> DatastoreVersion:
    row = DatastoreVersion.get_or_none(DatastoreVersion.id == version_id)
    if row is None:
        raise errors.NotFound(f"Datastore version '{version_id}' cannot be found.")
    return row


def version_by_name(datastore_name: str, version: str) -> DatastoreVersion:
    row = DatastoreVersion.get_or_none(
        (DatastoreVersion.datastore == datastore(datastore_name))
        & ((DatastoreVersion.name == version) | (DatastoreVersion.id == version))
    )
    if row is None:
        raise errors.NotFound(f"Datastore version '{version}' cannot be found.")
    return row


def version_for_create(datastore_name: str, version_name: str | None) -> DatastoreVersion:
    """The active version a create asks for (the datastore's default when it names none)."""
    found = datastore(datastore_name)
    if version_name is None:
        version = DatastoreVersion.get_or_none(DatastoreVersion.id == found.default_version_id)
    else:
        version = DatastoreVersion.get_or_none(
            (DatastoreVersion.datastore == found)
            & ((DatastoreVersion.name == version_name) | (DatastoreVersion.id == version_name))
        )
    if version is None or not version.active:
        raise errors.NotFound(
            f"Datastore version '{version_name}' cannot be found for datastore '{found.name}'."
        )
    return version


# Parameters


def parameters(version: DatastoreVersion) -> list[dict[str, Any]]:
    described = parameter_rules.of_version(version)
    return [described[name].view(version.id) for name in sorted(described)]


def parameter(version: DatastoreVersion, name: str) -> dict[str, Any]:
    for found in parameters(version):
        if found["name"] == name:
            return found
    raise errors.NotFound(f"Parameter '{name}' is not known for {version.datastore.name}.")
