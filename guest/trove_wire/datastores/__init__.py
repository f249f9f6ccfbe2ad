"""The datastore registry: one spec per datastore, the one home of every decision that
differs between datastores (binaries and versions, name rules and reserved names,
configuration parameters, the role's binary variables, the default port, the guest's
driver, what it supports).

Each datastore is a folder of `trove_datastores` whose `spec` module holds its `SPEC`; the
registry is every such folder, found at import, so adding the folder registers it. The
control plane (catalog, names, parameters, provisioning, the API) and the guest both read
it; it lives here, beside the wire contract, because the guest installs without the
control plane. `docs/adding-a-datastore.md` says how to add one.
"""

from __future__ import annotations

import importlib
import pkgutil

import trove_datastores
from trove_datastores.base import DatastoreSpec


def _discovered() -> dict[str, DatastoreSpec]:
    """Every sub-package of `trove_datastores`, by name, in the order of their names."""
    folders = sorted(
        found.name for found in pkgutil.iter_modules(trove_datastores.__path__) if found.ispkg
    )
    specs = {}
    for folder in folders:
        spec: DatastoreSpec = importlib.import_module(f"trove_datastores.{folder}.spec").SPEC
        if spec.name != folder:
            raise ImportError(f"trove_datastores/{folder} holds the spec of {spec.name!r}")
        specs[folder] = spec
    return specs


REGISTRY: dict[str, DatastoreSpec] = _discovered()


class UnknownDatastore(KeyError):
    """No spec for this datastore name."""


def get(name: str) -> DatastoreSpec:
    try:
        return REGISTRY[name]
    except KeyError as exc:
        raise UnknownDatastore(name) from exc
