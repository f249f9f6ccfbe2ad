"""Replication sets as the API and the task manager see them: which instance follows which,
what a replica may be created from, and which sources have failed long enough to be failed
over. The work itself (copying, promoting, fencing) is in `taskmanager.replication_flows`.

A set is one source and its replicas (no replica of a replica). `Instance.replica_of_id`
is the one record of who follows whom; the flows change it as they change the datastores.
"""

from __future__ import annotations

from typing import Any

from trove_svc.domain import errors, status, tasks
from trove_svc.store.models import Instance, ServiceStatus, Task
from trove_wire import datastores

# Replicas one create may ask for (Trove's replica_count).
MAX_REPLICA_COUNT = 5


def replicas_of(instance_id: str) -> list[Instance]:
    return list(
        Instance.select()
        .where(Instance.replica_of_id == instance_id)
        .order_by(Instance.created_at, Instance.id)
    )


def has_replicas(instance_id: str) -> bool:
    return bool(Instance.select().where(Instance.replica_of_id == instance_id).exists())


def source_for_create(project_id: str, spec: dict[str, Any]) -> Instance:
    """The instance a create's `replica_of` names, checked: the caller's, built and ACTIVE,
    of a datastore with replicas, not itself a replica; and the request asks for nothing
    a replica takes from its source."""
    source_id = spec["replica_of"]
    source = Instance.get_or_none((Instance.id == source_id) & (Instance.project_id == project_id))
    if source is None:
        raise errors.NotFound(f"Instance {source_id} (replica_of) could not be found.")
    datastore = source.datastore_version.datastore.name
    if not datastores.get(datastore).capabilities.replicas:
        raise errors.BadRequest(f"Datastore {datastore} has no replicas.")
    if source.replica_of_id:
        raise errors.BadRequest(
            f"Instance {source.id} is itself a replica (of {source.replica_of_id}); "
            "create the replica from that source."
        )
    require_set_idle(source)
    if not source.provisioned or source.status != status.ACTIVE:
        raise errors.Conflict(
            f"Instance {source.id} is {source.status}; a replica needs it ACTIVE."
        )
    requested = spec.get("datastore") or {}
    if requested.get("type") and requested["type"] != datastore:
        raise errors.BadRequest(f"Instance {source.id} is {datastore}, not {requested['type']}.")
    if requested.get("version") and requested["version"] not in (
        source.datastore_version.name,
        source.datastore_version.id,
    ):
        raise errors.BadRequest(
            f"A replica runs its source's version ({source.datastore_version.name})."
        )
    for field in ("databases", "users", "restorePoint"):
        if spec.get(field):
            raise errors.BadRequest(
                f"A replica takes its data from its source; {field} cannot be given with "
                "replica_of."
            )
    return source


def members(instance: Instance) -> list[str]:
    """Every instance of the replication set `instance` is in (its source first)."""
    source_id = instance.replica_of_id or instance.id
    return [source_id] + [r.id for r in replicas_of(source_id)]


def require_set_idle(instance: Instance) -> None:
    """Moving writes within a set, or adding to it, waits until no member is busy (a
    replica still being built, a restart, another promotion)."""
    busy = [member for member in members(instance) if tasks.is_busy(member)]
    if busy:
        raise errors.Conflict(
            f"The replication set of {instance.id} is busy ({', '.join(busy)}); try again "
            "when its tasks are done."
        )


# The operations that change a whole set, as a refusal names them.
SET_OPERATIONS = {
    "promote": "switched over (promote_to_replica_source)",
    "eject": "failed over (eject_replica_source)",
    "configure_set": "reconfigured (a configuration group's change, member by member)",
}


def require_no_set_operation(instance: Instance) -> None:
    """A member leaves its set only while nothing changes the whole set: 409 naming the
    operation under way (its replicas would otherwise follow an instance that is gone)."""
    running = (
        Task.select()
        .where(
            Task.instance_id.in_(members(instance))
            & Task.state.in_(tasks.OPEN)
            & Task.action.in_(list(SET_OPERATIONS))
        )
        .order_by(Task.created_at)
        .first()
    )
    if running is not None:
        raise errors.Conflict(
            f"The replication set of {instance.id} is being {SET_OPERATIONS[running.action]}: "
            f"task {running.id} on {running.instance_id}. Try again when it is done."
        )


def require_replica(instance: Instance) -> None:
    if not instance.replica_of_id:
        raise errors.BadRequest(f"Instance {instance.id} is not a replica.")


def require_no_replicas(instance: Instance) -> None:
    if has_replicas(instance.id):
        raise errors.Conflict(
            f"Instance {instance.id} is the source of replicas; detach or delete them first."
        )


def require_failed_source(instance: Instance, now: float, failover_after: float) -> None:
    """Eject only a source that has replicas and has not been healthy for a while: a
    healthy source is switched over instead (promote a replica)."""
    if not has_replicas(instance.id):
        raise errors.BadRequest(f"Instance {instance.id} has no replicas to promote.")
    healthy_at = (
        ServiceStatus.select(ServiceStatus.healthy_at)
        .where(ServiceStatus.instance == instance.id)
        .scalar()
    )
    if healthy_at is not None and healthy_at > now - max(failover_after, 5.0):
        raise errors.Conflict(
            f"Instance {instance.id} is healthy; to move its writes to a replica, promote "
            "that replica (promote_to_replica_source)."
        )


def failed_sources(now: float, failover_after: float) -> list[Instance]:
    """ACTIVE (or BACKUP) sources not healthy for longer than `failover_after`, while a replica of
    theirs was healthy within it (so the silence is the source's, not the control plane's),
    of datastores that fail over by themselves."""
    recent_replica = (
        Instance.select(Instance.replica_of_id)
        .join(ServiceStatus, on=ServiceStatus.instance == Instance.id)
        .where(
            Instance.replica_of_id.is_null(False)
            & (ServiceStatus.healthy_at >= now - failover_after)
        )
    )
    candidates = (
        Instance.select()
        .join(ServiceStatus, on=ServiceStatus.instance == Instance.id)
        .where(
            Instance.id.in_(recent_replica)
            # In BACKUP too: a backup does not keep a dead source from being failed over.
            & Instance.status.in_((status.ACTIVE, status.BACKUP))
            # ACTIVE for a while: a heartbeat that was due during a restart may be late.
            & (Instance.status_since < now - failover_after)
            & Instance.provisioned
            & ServiceStatus.healthy_at.is_null(False)
            & (ServiceStatus.healthy_at < now - failover_after)
        )
    )
    return [
        row
        for row in candidates
        if datastores.get(row.datastore_version.datastore.name).capabilities.failover
    ]


def awaiting_rejoin() -> list[Instance]:
    """Failed-over sources whose guest reported after their failover ended: their set has
    a new source, and they rejoin it as its replica. A rejoin that failed is not tried
    again by itself (its fault says why; it is asked for by hand)."""
    candidates = (
        Instance.select(Instance, ServiceStatus.last_received_at.alias("heard_at"))
        .join(ServiceStatus, on=ServiceStatus.instance == Instance.id)
        .where(
            Instance.replica_of_id.is_null(False)
            & Instance.status.in_((status.ACTIVE, status.ERROR, status.EJECT))
            & Instance.provisioned
            & ServiceStatus.last_received_at.is_null(False)
        )
        .objects()
    )
    due = []
    for instance in candidates:
        last = (
            Task.select()
            .where((Task.instance_id == instance.id) & Task.action.in_(("eject", "rejoin")))
            .order_by(Task.created_at.desc())
            .first()
        )
        if (
            last is not None
            and last.action == "eject"
            and last.state in (tasks.TaskState.SUCCEEDED, tasks.TaskState.FAILED)
            and last.finished_at is not None
            and instance.heard_at > last.finished_at
        ):
            due.append(instance)
    return due


def set_source(instance_ids: list[str], source_id: str | None, now: float) -> None:
    if instance_ids:
        Instance.update(replica_of_id=source_id, updated_at=now).where(
            Instance.id.in_(instance_ids)
        ).execute()
