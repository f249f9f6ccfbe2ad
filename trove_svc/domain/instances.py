"""Instance operations as the API asks for them: record the intent, cast the work."""

from __future__ import annotations

import ipaddress
from typing import Any

from trove_svc import compute
from trove_svc.bus.messages import TaskManagerClient
from trove_svc.domain import (
    audit,
    backups,
    catalog,
    configurations,
    errors,
    hot_standby,
    instance_reads,
    parameter_rules,
    quotas,
    replication_sets,
    restores,
    status,
    tasks,
    warm_pool,
)
from trove_svc.process.settings import Settings
from trove_svc.security import names, passwords
from trove_svc.security.caller import Caller
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.models import (
    Configuration,
    DatastoreVersion,
    Flavor,
    Instance,
    ServiceStatus,
    Task,
    database_proxy,
)
from trove_wire import datastores


def _plain_network(cidr: object, where: str) -> str:
    """`cidr` as a plain IP network in its normal form (10.1.2.3/24 is 10.1.2.0/24).

    An IPv6 zone id (fe80::1%eth0) is refused: it names an interface of whichever host
    reads it, and Python takes any text there (fe80::1%{{ x }}), which would then reach
    pg_hba.conf, the host's rules and Ansible as part of a "network"."""
    refusal = f"{where}: is not a CIDR (an IP network, such as 192.0.2.0/24 or 2001:db8::/32)."
    if not isinstance(cidr, str):  # ip_network would take a number as an address
        raise errors.BadRequest(refusal)
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise errors.BadRequest(refusal) from exc
    if isinstance(network, ipaddress.IPv6Network) and network.network_address.scope_id is not None:
        raise errors.BadRequest(f"{where}: must not hold a zone id (%...): only a CIDR.")
    return network.with_prefixlen


def _require_replica_reach(source: Instance, provider: str) -> None:
    """A replica of `source` made by `provider`: refused where replicas are not set up
    yet, on another provider than its source's (its source's address means something on
    that provider's hosts only), and, for a datastore whose replica reads its source's
    files, anywhere but this machine (placement may put it on another host)."""
    compute.require_reach("Replicas", source.provider, provider)
    source_provider = source.provider or "local"
    if source_provider != provider:
        raise errors.BadRequest(
            f"Instance {source.id} is on {source_provider} hosts and new instances are made "
            f"on {provider} hosts: a replica is made where its source is."
        )
    datastore = source.datastore_version.datastore.name
    if datastores.get(datastore).replica_source_files and provider != "local":
        raise errors.NotImplementedYet(
            f"Replicas of {datastore} copy their source's files: they are available on "
            "local hosts only."
        )


def _checked_access(access: dict[str, Any] | None) -> dict[str, Any]:
    access = access or {}
    cidrs = [
        _plain_network(cidr, f"instance.access.allowed_cidrs.{index}")
        for index, cidr in enumerate(access.get("allowed_cidrs", []))
    ]
    return {"is_public": bool(access.get("is_public", False)), "allowed_cidrs": cidrs}


def _checked_databases_and_users(
    version: DatastoreVersion,
    databases: list[dict[str, Any]],
    users: list[dict[str, Any]],
    password_min_length: int,
) -> None:
    datastore = version.datastore.name
    for database in databases:
        names.check_database_name(datastore, database["name"])
        parameter_rules.check_database_options(version, database)
    known = {d["name"] for d in databases}
    seen_users: set[str] = set()
    for user in users:
        names.check_user_name(datastore, user["name"])
        passwords.check(datastore, user["password"], password_min_length, f"user {user['name']}")
        if user.get("host"):
            names.check_host(user["host"])
        if user["name"] in seen_users:
            raise errors.BadRequest(f"User {user['name']!r} is given twice.")
        seen_users.add(user["name"])
        for grant in user.get("databases", []):
            if grant["name"] not in known:
                raise errors.BadRequest(
                    f"User {user['name']!r} is granted database {grant['name']!r}, "
                    "which is not in the request's databases."
                )


class InstanceService:
    def __init__(
        self, settings: Settings, taskmanager: TaskManagerClient, keys: ServiceKeys
    ) -> None:
        self._settings = settings
        self._taskmanager = taskmanager
        self._keys = keys

    def create(self, caller: Caller, body: dict[str, Any]) -> Instance:
        """A new instance (or, with `replica_of`, `replica_count` replicas of a source: the
        first is answered, the others are named after it with -2, -3, ...)."""
        spec = body["instance"]
        requested = spec.get("datastore") or {}
        source = (
            replication_sets.source_for_create(caller.project_id, spec)
            if spec.get("replica_of")
            else None
        )
        if source is not None:
            _require_replica_reach(source, self._settings.compute_provider)
            spec = {
                "flavorRef": source.flavor_id,
                "volume": {"size": source.volume_size},
                **spec,
            }
        flavor = catalog.flavor(spec["flavorRef"])
        if source is None and spec.get("replica_count"):
            raise errors.BadRequest("replica_count needs replica_of.")
        restore = self._restore(caller, spec.get("restorePoint"), requested)
        version = (
            source.datastore_version
            if source is not None
            else catalog.version_for_create(
                requested.get("type")
                or (restore or {}).get("datastore")
                or self._settings.default_datastore,
                requested.get("version"),
            )
        )
        databases = spec.get("databases", [])
        users = spec.get("users", [])
        _checked_databases_and_users(version, databases, users, self._settings.password_min_length)
        access = _checked_access(spec.get("access"))
        group = (
            configurations.for_create(caller.project_id, spec["configuration"], version.id)
            if spec.get("configuration")
            else None
        )
        if source is not None:
            group = group or configurations.group_of(source)
            hot_standby.require_can_follow(
                "A replica of this flavor and configuration group",
                hot_standby.of_instance(source),
                hot_standby.expected(
                    version.datastore.name, flavor, dict(group.values) if group else {}
                ),
            )
        count = spec.get("replica_count") or 1
        quotas.check(self._settings, caller.project_id, count, spec["volume"]["size"] * count)
        names_of = [spec["name"]] + [f"{spec['name']}-{n}" for n in range(2, count + 1)]
        made = [
            self._create_one(caller, spec, name, version, flavor, access, group, source, restore)
            for name in names_of
        ]
        return made[0]

    def _create_one(
        self,
        caller: Caller,
        spec: dict[str, Any],
        name: str,
        version: DatastoreVersion,
        flavor: Flavor,
        access: dict[str, Any],
        group: Configuration | None,
        source: Instance | None,
        restore: dict[str, Any] | None,
    ) -> Instance:
        databases = spec.get("databases", [])
        users = spec.get("users", [])
        now = self._settings.clock()
        task_id = self._settings.new_id()
        tenant: dict[Any, Any] = {
            Instance.name: name,
            Instance.project_id: caller.project_id,
            Instance.volume_size: spec["volume"]["size"],
            Instance.access: access,
            Instance.configuration_id: group.id if group else None,
        }
        # A warm instance of the version and flavor is claimed if its pool has one ready;
        # else one is built from nothing.
        warm = warm_pool.ready(version, flavor) if source is None and restore is None else []
        # The instance the block made (False) or claimed from a warm pool (True).
        made: dict[str, bool] = {}
        with tasks.starting(
            self._taskmanager,
            caller,
            now,
            undo=lambda: self._undo_create(made, now),
            transaction=lambda: compute.placing(self._settings),
        ) as start:
            warm_id = warm_pool.claim(warm, tenant, now)
            instance_id = warm_id or self._settings.new_id()
            # The key is made now, for this tenant's instance (a warm one had none).
            _, sealed_key = self._keys.new_instance_key(instance_id)
            if warm_id is not None:
                Instance.update(guest_key=sealed_key).where(Instance.id == warm_id).execute()
            else:
                place = compute.new_place(self._settings, flavor, spec["volume"]["size"], source)
                status.record_new(
                    now,
                    **place,
                    id=instance_id,
                    name=name,
                    replica_of_id=source.id if source is not None else None,
                    project_id=caller.project_id,
                    datastore_version=version,
                    flavor=flavor,
                    volume_size=spec["volume"]["size"],
                    access=access,
                    configuration_id=group.id if group else None,
                    guest_key=sealed_key,
                )
            made[instance_id] = warm_id is not None
            start.task(
                task_id,
                instance_id,
                "create",
                args={
                    "databases": databases,
                    "restore": restore,
                    "replica_of": source.id if source is not None else None,
                    "warm": warm_id is not None,
                },
                sealed_secrets=self._keys.seal_secrets(task_id, {"users": users}),
            )
        return Instance.get_by_id(instance_id)

    def _restore(
        self, caller: Caller, point: dict[str, Any] | None, requested: dict[str, Any]
    ) -> dict[str, Any] | None:
        """What a create restores from (`restorePoint`), checked; None for an empty one."""
        if not point:
            return None
        compute.require_reach("Restores", self._settings.compute_provider)
        backup, restore_time = restores.restore_source(self._settings, caller, point)
        if requested.get("type") and requested["type"] != backup.datastore:
            raise errors.BadRequest(
                f"Backup {backup.id} is of {backup.datastore}, not {requested['type']}."
            )
        return {
            "backup_id": backup.id,
            "datastore": backup.datastore,
            "restore_time": restore_time,
        }

    def _undo_create(self, made: dict[str, bool], now: float) -> None:
        """Undo a create whose work could not be handed to the task manager: a new
        instance's records go; a claimed warm one is left for its pool to replace."""
        for instance_id, claimed_warm in made.items():
            if claimed_warm:
                warm_pool.give_up_claim(instance_id, now)
                continue
            with database_proxy.atomic():
                ServiceStatus.delete().where(ServiceStatus.instance == instance_id).execute()
                Instance.delete().where(Instance.id == instance_id).execute()

    def list_page(
        self, caller: Caller, limit: int, marker: str | None
    ) -> tuple[list[instance_reads.Row], str | None]:
        return instance_reads.page(caller.project_id, limit, marker)

    def list_page_all(
        self, limit: int, marker: str | None
    ) -> tuple[list[instance_reads.Row], str | None]:
        """Every project's instances (admin)."""
        return instance_reads.page(None, limit, marker)

    def get_any(self, instance_id: str) -> instance_reads.Row:
        """One instance of any project (admin)."""
        return instance_reads.one(instance_id, None)

    def get(self, caller: Caller, instance_id: str) -> instance_reads.Row:
        return instance_reads.one(instance_id, caller.project_id)

    def _start_task(
        self,
        caller: Caller,
        instance: Instance,
        action: str,
        new_status: str,
        args: dict[str, Any] | None = None,
    ) -> str:
        """Record a task and move the instance to `new_status`, then hand it over.

        The status moves by compare-and-set, so of two requests racing for an instance
        one wins and the other gets 409, as does one that finds a task of the instance
        open (unless `action` runs after it: `tasks.RUNS_AFTER`). If the bus is down, both
        records are undone.
        """
        status.require_transition(instance.id, instance.status, new_status)
        if tasks.is_busy_for(instance.id, action):
            raise errors.Conflict(
                f"Instance {instance.id} is busy with another task; try again when it is done."
            )
        return self._record_and_send(caller, instance, action, new_status, args or {})

    def _record_and_send(
        self,
        caller: Caller,
        instance: Instance,
        action: str,
        new_status: str,
        args: dict[str, Any],
    ) -> str:
        task_id = self._settings.new_id()
        now = self._settings.clock()

        def move_back() -> None:
            Instance.update(status=instance.status, status_since=instance.status_since).where(
                Instance.id == instance.id
            ).execute()

        with tasks.starting(self._taskmanager, caller, now, undo=move_back) as start:
            if not status.move(instance.id, instance.status, new_status, now):
                raise errors.Conflict(f"Instance {instance.id} changed meanwhile; try again.")
            start.task(task_id, instance.id, action, args=args)
        return task_id

    def delete(self, caller: Caller, instance_id: str) -> None:
        """Delete from any state: the delete task cancels whatever the instance was waiting
        on (a run going for it stops) before it tears the instance down. Asking again while
        a delete is under way changes nothing."""
        instance, _ = self.get(caller, instance_id)
        deleting = Task.select().where(
            (Task.instance_id == instance_id)
            & (Task.action == "delete")
            & Task.state.in_(tasks.OPEN)
        )
        if instance.status == status.SHUTDOWN and deleting.exists():
            return
        replication_sets.require_no_set_operation(instance)
        replication_sets.require_no_replicas(instance)
        self._record_and_send(caller, instance, "delete", status.SHUTDOWN, {})

    def restart(self, caller: Caller, instance_id: str) -> None:
        instance, _ = self.get(caller, instance_id)
        if not instance.provisioned:
            raise errors.Conflict(f"Instance {instance_id} was never built; delete it instead.")
        self._start_task(caller, instance, "restart", status.REBOOT)

    def promote_to_replica_source(self, caller: Caller, instance_id: str) -> None:
        """A switchover: the replica becomes the source, the source (and the set's other
        replicas) follow it; no committed write is lost."""
        instance, _ = self.get(caller, instance_id)
        replication_sets.require_replica(instance)
        status.require_active(instance.id, instance.status)
        replication_sets.require_set_idle(instance)
        self._start_task(caller, instance, "promote", status.PROMOTE)

    def eject_replica_source(self, caller: Caller, instance_id: str, by: str = "") -> str:
        """Fail over a source that stopped working: its most advanced replica becomes the
        source, the others follow it, and the old source is fenced."""
        instance, _ = self.get(caller, instance_id)
        replication_sets.require_failed_source(
            instance, self._settings.clock(), self._settings.failover_after
        )
        replication_sets.require_set_idle(instance)
        return self._start_task(caller, instance, "eject", status.EJECT)

    def rejoin_replica_source(self, caller: Caller, instance_id: str) -> str:
        """A failed-over source (or any replica) is brought back as a replica of its
        source: rewound, or copied afresh, and following it (what automatic rejoin does,
        asked for by hand)."""
        instance, _ = self.get(caller, instance_id)
        replication_sets.require_replica(instance)
        replication_sets.require_set_idle(instance)
        return self._start_task(caller, instance, "rejoin", status.REJOIN)

    def detach_replica(self, caller: Caller, instance_id: str) -> None:
        """The replica stops following its source and takes writes, on its own."""
        instance, _ = self.get(caller, instance_id)
        replication_sets.require_replica(instance)
        status.require_active(instance.id, instance.status)
        replication_sets.require_set_idle(instance)
        self._start_task(caller, instance, "detach", status.DETACH)

    def resize_flavor(self, caller: Caller, instance_id: str, flavor_ref: str | int) -> None:
        instance, _ = self.get(caller, instance_id)
        flavor = catalog.flavor(flavor_ref)
        if flavor.id == instance.flavor_id:
            raise errors.BadRequest(f"Instance {instance_id} already has flavor {flavor.id}.")
        status.require_active(instance.id, instance.status)
        hot_standby.require_flavor_fits_set(instance, flavor)
        compute.require_room_to_grow(self._settings, instance, flavor, None)
        self._start_task(caller, instance, "resize", status.RESIZE, {"flavor_id": flavor.id})

    def update_access(self, caller: Caller, instance_id: str, access: dict[str, Any]) -> None:
        instance, _ = self.get(caller, instance_id)
        wanted = _checked_access({**instance.access, **access})
        if wanted == instance.access:
            return
        status.require_active(instance.id, instance.status)
        self._start_task(caller, instance, "update_access", status.REBOOT, {"access": wanted})

    def _recorded(self, caller: Caller, instance_id: str, action: str, summary: str) -> Any:
        return audit.recorded(
            self._settings, instance_id, caller.project_id, caller.context, action, summary
        )

    def rename(self, caller: Caller, instance_id: str, name: str) -> None:
        instance, _ = self.get(caller, instance_id)
        if name == instance.name:
            return
        with self._recorded(caller, instance_id, "rename", "renamed"):
            Instance.update(name=name, updated_at=self._settings.clock()).where(
                Instance.id == instance_id
            ).execute()

    def resize_volume(self, caller: Caller, instance_id: str, size: int) -> None:
        """The local provider's volume is a tracked limit: growing it is a record change."""
        instance, _ = self.get(caller, instance_id)
        status.require_active(instance.id, instance.status)
        if size <= instance.volume_size:
            raise errors.BadRequest(
                f"The new volume size {size} GB must be larger than the current "
                f"{instance.volume_size} GB; volumes do not shrink."
            )
        compute.require_room_to_grow(self._settings, instance, None, size)
        summary = f"volume {instance.volume_size} GB to {size} GB"
        with self._recorded(caller, instance_id, "resize_volume", summary):
            quotas.check(self._settings, caller.project_id, 0, size - instance.volume_size)
            Instance.update(volume_size=size, updated_at=self._settings.clock()).where(
                Instance.id == instance_id
            ).execute()

    def reset_status(self, caller: Caller, instance_id: str) -> None:
        """Admin: stop waiting on whatever the instance was doing; it shows ERROR. The audit
        trail names the admin who did it, and their project."""
        instance, _ = self.get(caller, instance_id)
        now = self._settings.clock()
        with database_proxy.atomic():
            tasks.end_open(instance.id, now, tasks.TaskState.FAILED, "Reset by an administrator.")
            backups.settle_left_behind(instance.id, now, "Reset by an administrator.")
            status.record_fault(instance.id, now, "Status reset by an administrator.")
            tasks.record_done(
                self._settings.new_id(),
                instance.id,
                instance.project_id,
                "reset_status",
                caller.context.user,
                caller.context.request_id,
                now,
                now,
                True,
                "status reset by an administrator",
                requested_by_project=caller.context.project,
            )
