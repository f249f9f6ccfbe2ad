"""Warm pools: instances of a datastore version and flavor built ahead of demand (account,
directories, initialized data directory), which a create claims instead of building one.

A warm instance belongs to no tenant (its project is `WARM_PROJECT`, which no tenant's
list or quota counts) and holds no secret: its broker account and key, its passwords and
everything else of a tenant's are made once a create claims it. The store decides every
race: a create claims one with a single conditional update, and each warm instance holds a
place of its pool (`Instance.warm_slot`, unique), so two task managers refilling a pool
never both fill one place.
"""

from __future__ import annotations

import logging
from typing import Any

import peewee

from trove_svc import compute
from trove_svc.bus.messages import TaskManagerClient
from trove_svc.domain import errors, status, tasks
from trove_svc.process.settings import Settings, WarmPoolKey
from trove_svc.security.caller import Caller
from trove_svc.store.models import (
    Datastore,
    DatastoreVersion,
    Flavor,
    Instance,
    Task,
)
from trove_wire.envelope import Context

LOG = logging.getLogger(__name__)

# The project warm instances are in: no tenant's (a project id is never empty).
WARM_PROJECT = ""
# Who the pool's tasks are asked by, in the audit trail.
REFILLER = "warm pool"
# How often a task manager looks whether a pool needs refilling (or shrinking).
INTERVAL = 1.0
VOLUME_GB = 1


def slot_name(pool: WarmPoolKey, place: int) -> str:
    return f"{pool}#{place}"


def _pool_caller() -> Caller:
    return Caller(WARM_PROJECT, Context(project=WARM_PROJECT, user=REFILLER))


def _still_warm() -> peewee.Expression:
    return (
        (Instance.status == status.WARM)
        & Instance.warm_slot.is_null(False)
        & (Instance.project_id == WARM_PROJECT)
    )


def ready(version: DatastoreVersion, flavor: Flavor) -> list[str]:
    """The warm instances of `version` and `flavor` ready to be claimed, oldest first.
    Read before the create's transaction, whose first statement is then a write (SQLite
    cannot turn a transaction that read into one that writes once another wrote)."""
    query = (
        Instance.select(Instance.id)
        .where(
            _still_warm() & (Instance.datastore_version == version) & (Instance.flavor == flavor)
        )
        .order_by(Instance.created_at, Instance.id)
    )
    return [str(row.id) for row in query]


def claim(candidates: list[str], tenant: dict[Any, Any], now: float) -> str | None:
    """Make the first of `candidates` still warm the tenant's (`tenant`: the columns the
    create sets), BUILD again; its id, or None when none is left. Each try is one UPDATE
    ... WHERE it is still warm and unclaimed, checked by its row count: of two creates
    racing for one instance, one changes the row and the other nothing (and tries the
    next)."""
    for candidate in candidates:
        claimed = (
            Instance.update(
                {
                    **tenant,
                    Instance.warm_slot: None,
                    Instance.status: status.BUILD,
                    Instance.status_since: now,
                    Instance.current_step: None,
                    Instance.created_at: now,
                    Instance.updated_at: now,
                }
            )
            .where((Instance.id == candidate) & _still_warm())
            .execute()
        )
        if claimed == 1:
            LOG.info("warm instance %s claimed", candidate)
            return candidate
    return None


def give_up_claim(instance_id: str, now: float) -> None:
    """A claimed instance whose create could not be handed over (the bus refused it): back
    to no tenant, in ERROR, for the pool to remove and replace."""
    Instance.update(
        project_id=WARM_PROJECT,
        status=status.ERROR,
        status_since=now,
        fault_message="Claimed by a create that could not be handed to a task manager.",
        fault_at=now,
    ).where(Instance.id == instance_id).execute()


def _wanted(slot: str | None, pools: dict[WarmPoolKey, int]) -> bool:
    """Whether a warm instance's place is still in its pool as the settings size it."""
    if slot is None:
        return False
    pool, _, place = slot.rpartition("#")
    return any(str(key) == pool and int(place) < size for key, size in pools.items())


def _catalog(pool: WarmPoolKey) -> tuple[DatastoreVersion, Flavor] | None:
    version = (
        DatastoreVersion.select()
        .join(Datastore)
        .where((Datastore.name == pool.datastore) & (DatastoreVersion.name == pool.version))
        .first()
    )
    flavor = Flavor.get_or_none(Flavor.id == pool.flavor)
    if version is None or not version.active or flavor is None:
        return None
    return version, flavor


def keep_filled(settings: Settings, taskmanager: TaskManagerClient) -> list[WarmPoolKey]:
    """Remove warm instances the pools no longer want (or that failed), and start building
    one for each empty place of each pool whose creates are all built. Returns the pools
    that cannot be filled: no active datastore version or no flavor of theirs in the
    catalog."""
    pools = settings.warm_pools
    for instance in Instance.select().where(Instance.project_id == WARM_PROJECT):
        if instance.status == status.SHUTDOWN:
            continue
        if instance.status == status.ERROR or not _wanted(instance.warm_slot, pools):
            _remove(settings, taskmanager, instance)
    unknown = []
    for pool, size in pools.items():
        if size == 0:
            continue
        found = _catalog(pool)
        if found is None:
            unknown.append(pool)
            continue
        if _creates_under_way(*found):
            continue
        filled = {
            row.warm_slot
            for row in Instance.select(Instance.warm_slot).where(
                Instance.warm_slot.startswith(f"{pool}#")
            )
        }
        for place in range(size):
            if slot_name(pool, place) not in filled:
                _fill(settings, taskmanager, pool, place, *found)
    return unknown


def _creates_under_way(version: DatastoreVersion, flavor: Flavor) -> bool:
    """Whether a create of this version and flavor is being built (from a warm instance or
    from nothing): its pool waits to refill until none is, so that a build made ahead of
    demand never takes the CPU from the demand itself."""
    return bool(
        Task.select(Task.id)
        .join(Instance, on=(Task.instance_id == Instance.id))
        .where(
            (Task.action == "create")
            & Task.state.in_(tasks.OPEN)
            & (Instance.datastore_version == version)
            & (Instance.flavor == flavor)
        )
        .exists()
    )


def _fill(
    settings: Settings,
    taskmanager: TaskManagerClient,
    pool: WarmPoolKey,
    place: int,
    version: DatastoreVersion,
    flavor: Flavor,
) -> None:
    """Start building a warm instance for one place of a pool, unless another task manager
    just did (the place's unique index refuses the second)."""
    now = settings.clock()
    instance_id, task_id = settings.new_id(), settings.new_id()
    try:
        with tasks.starting(taskmanager, _pool_caller(), now) as start:
            status.record_new(
                now,
                **compute.new_place(settings, flavor, VOLUME_GB, None),
                id=instance_id,
                name=f"warm {slot_name(pool, place)}",
                project_id=WARM_PROJECT,
                datastore_version=version,
                flavor=flavor,
                volume_size=VOLUME_GB,
                access={"is_public": False, "allowed_cidrs": []},
                warm_slot=slot_name(pool, place),
            )
            start.task(task_id, instance_id, "warm", args={"databases": []})
    except peewee.IntegrityError:
        return
    LOG.info("warm pool %s: building %s for place %d", pool, instance_id, place)


def _remove(settings: Settings, taskmanager: TaskManagerClient, instance: Instance) -> None:
    """Delete a warm instance (and its account), unless another task manager just began to."""
    now = settings.clock()
    try:
        with tasks.starting(taskmanager, _pool_caller(), now) as start:
            if not status.move(instance.id, instance.status, status.SHUTDOWN, now):
                raise errors.Conflict(f"Instance {instance.id} changed meanwhile.")
            start.task(settings.new_id(), instance.id, "delete")
    except errors.Conflict:
        return
    LOG.info("warm pool: removing %s (%s)", instance.id, instance.warm_slot or "no place")
