"""The settings a replica must hold at least as high as its source, and the order a change
of them takes across a replication set.

PostgreSQL refuses to start a standby whose max_connections (and a few more) is lower than
its primary's, and stops replaying once its primary goes above it. So a replica's values
are checked against its source's before anything is built, and a change of them goes to
the replicas first when it raises them, to the source first when it lowers them. The
engine names the settings (`DatastoreSpec.hot_standby_settings`); MariaDB and Redis name
none, and nothing here orders their changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, TypeVar

from trove_svc.domain import errors
from trove_svc.store.models import Configuration, Flavor, Instance
from trove_wire import datastores

Member = TypeVar("Member")


class Order(StrEnum):
    """Which member of a set a change reaches first."""

    ANY = "any"  # no hot-standby setting changes
    REPLICAS_FIRST = "replicas first"  # raised
    SOURCE_FIRST = "source first"  # lowered


def settings(baseline: Mapping[str, int], group_values: Mapping[str, Any]) -> dict[str, int]:
    """The hot-standby settings a member runs with: its role's (`baseline`), with its
    group's values on top (the engine's rules already made each an integer)."""
    return {name: int(group_values.get(name, value)) for name, value in baseline.items()}


def shortfalls(source: Mapping[str, int], replica: Mapping[str, int]) -> list[str]:
    """Each setting the replica holds lower than its source, in words ([] if it can
    follow)."""
    return [
        f"{name} = {replica[name]} is lower than the source's {value}"
        for name, value in sorted(source.items())
        if name in replica and replica[name] < value
    ]


def order(changes: Sequence[tuple[Mapping[str, int], Mapping[str, int]]]) -> Order:
    """The order the members' changes (each its settings before and after) take across
    their set. Changes that raise one setting and lower another (on one member or on
    several) have none: 400, asking for two changes."""
    raised: set[str] = set()
    lowered: set[str] = set()
    for before, after in changes:
        raised |= {name for name in after if after[name] > before.get(name, after[name])}
        lowered |= {name for name in after if after[name] < before.get(name, after[name])}
    if raised and lowered:
        raise errors.BadRequest(
            f"This change raises {', '.join(sorted(raised))} and lowers "
            f"{', '.join(sorted(lowered))} on a replication set: replicas need a setting "
            "raised before their source, and lowered after it. Make them as two changes."
        )
    if raised:
        return Order.REPLICAS_FIRST
    if lowered:
        return Order.SOURCE_FIRST
    return Order.ANY


def in_order(change: Order, source: Member, replicas: Sequence[Member]) -> list[Member]:
    """The members of a set in the order `change` reaches them."""
    if change is Order.REPLICAS_FIRST:
        return [*replicas, source]
    return [source, *replicas]


# With the store: what a member of a set holds, now or with another group or flavor.


def expected(datastore: str, flavor: Flavor, group_values: Mapping[str, Any]) -> dict[str, int]:
    """The hot-standby settings an instance of `datastore`, of `flavor` and with those
    group values, runs with ({} for an engine that has none)."""
    return settings(datastores.get(datastore).hot_standby_settings(flavor.vcpus), group_values)


def group_values(instance: Instance) -> dict[str, Any]:
    """The values of the instance's configuration group ({} if none)."""
    if not instance.configuration_id:
        return {}
    group = Configuration.get_or_none(Configuration.id == instance.configuration_id)
    return dict(group.values) if group is not None else {}


def of_instance(
    instance: Instance,
    values: Mapping[str, Any] | None = None,
    flavor: Flavor | None = None,
) -> dict[str, int]:
    """What `instance` runs with by its group and flavor, or with the ones given instead."""
    return expected(
        instance.datastore_version.datastore.name,
        flavor or instance.flavor,
        group_values(instance) if values is None else values,
    )


def require_can_follow(
    what: str, source_values: Mapping[str, int], replica_values: Mapping[str, int]
) -> None:
    """400 naming each setting `what` (a replica, as it would be) holds lower than its
    source, before anything changes."""
    short = shortfalls(source_values, replica_values)
    if short:
        raise errors.BadRequest(
            f"{what} could not follow its source: {'; '.join(short)}. A replica needs each "
            "at least as high as its source's."
        )


def plan(
    source: Instance, replicas: Sequence[Instance], new_values: Mapping[str, Mapping[str, Any]]
) -> tuple[Order, list[Instance]]:
    """A change of configuration groups within a set (`new_values`: each changing member's
    values after, by id): 400 unless every replica can follow its source afterwards, else
    the order the change takes and the changing members in that order."""
    everyone = [source, *replicas]
    now = {m.id: of_instance(m) for m in everyone}
    after = {
        m.id: of_instance(m, new_values[m.id]) if m.id in new_values else now[m.id]
        for m in everyone
    }
    for replica in replicas:
        require_can_follow(f"Replica {replica.id}", after[source.id], after[replica.id])
    change = order([(now[member_id], after[member_id]) for member_id in new_values])
    return change, [m for m in in_order(change, source, replicas) if m.id in new_values]


def require_flavor_fits_set(instance: Instance, flavor: Flavor) -> None:
    """400 if `instance` with `flavor` would hold a setting lower than its source, or
    lower than one of its replicas would."""
    resized = of_instance(instance, flavor=flavor)
    if instance.replica_of_id:
        source = Instance.get_or_none(Instance.id == instance.replica_of_id)
        if source is not None:
            require_can_follow(
                f"Replica {instance.id} of flavor {flavor.id}", of_instance(source), resized
            )
    for replica in Instance.select().where(Instance.replica_of_id == instance.id):
        short = shortfalls(resized, of_instance(replica))
        if short:
            raise errors.BadRequest(
                f"With flavor {flavor.id}, replica {replica.id} could not follow this "
                f"instance: {'; '.join(short)}. Resize the replicas first."
            )
