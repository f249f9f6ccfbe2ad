"""The datastore registry: one spec per datastore, the one home of every decision that
differs between datastores (binaries and versions, name rules and reserved names,
configuration parameters, the role's binary variables, the default port, the guest's
driver, what it supports).

The control plane (catalog, names, parameters, provisioning, the API) and the guest both
read it; it lives here, beside the wire contract, because the guest installs without the
control plane. `docs/adding-a-datastore.md` says how to add one.
"""

from __future__ import annotations

from trove_wire.datastores import mariadb, postgresql, redis
from trove_wire.datastores.base import DatastoreSpec

REGISTRY: dict[str, DatastoreSpec] = {
    spec.name: spec for spec in (postgresql.SPEC, mariadb.SPEC, redis.SPEC)
}


class UnknownDatastore(KeyError):
    """No spec for this datastore name."""


def get(name: str) -> DatastoreSpec:
    try:
        return REGISTRY[name]
    except KeyError as exc:
        raise UnknownDatastore(name) from exc
