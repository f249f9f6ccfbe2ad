"""Configuration groups (Trove's `/configurations`): parameter values for the instances of
one datastore version, checked against the engine's own rules before anything is stored.

Attaching, detaching, or changing a group casts a `configure` task for each instance it
touches; the task manager writes the values to the datastore's file and applies the
dynamic ones at once (trove_svc.taskmanager.configure_flow). Each task is in that
instance's audit trail. The request answers once its tasks ended, as Trove's answers once
the guest applied the values: a client that reads a dynamic value next finds the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trove_svc.bus.messages import TaskManagerClient
from trove_svc.domain import (
    audit,
    catalog,
    errors,
    hot_standby,
    parameter_rules,
    replication_sets,
    status,
    tasks,
)
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.store.models import (
    Configuration,
    Datastore,
    DatastoreVersion,
    Instance,
    Task,
)
from trove_wire import datastores

# Instances a group's change reaches now; the others get its values when next built.
RUNNING = (status.ACTIVE, status.BACKUP)


def engine_values(instance: Instance) -> dict[str, str]:
    """The attached group's values as the instance's engine spells them ({} if none)."""
    if not instance.configuration_id:
        return {}
    group = Configuration.get_or_none(Configuration.id == instance.configuration_id)
    if group is None:
        return {}
    version = instance.datastore_version
    rules = parameter_rules.of_version(version)
    truth = datastores.get(version.datastore.name).boolean_words
    return {
        name: rules[name].engine_value(value, truth)
        for name, value in group.values.items()
        if name in rules
    }


def group_of(instance: Instance) -> Configuration | None:
    """The instance's configuration group (a replica is made with its source's)."""
    if not instance.configuration_id:
        return None
    found: Configuration | None = Configuration.get_or_none(
        Configuration.id == instance.configuration_id
    )
    return found


def owned(project_id: str, configuration_id: str) -> Configuration:
    """The project's group of that id; 404 for another project's, as for a missing one."""
    found = Configuration.get_or_none(
        (Configuration.id == configuration_id) & (Configuration.project_id == project_id)
    )
    if found is None:
        raise errors.NotFound(f"Configuration group {configuration_id} could not be found.")
    return found


def for_create(project_id: str, configuration_id: str, version_id: str) -> Configuration:
    """The group a create asks for, if it fits the new instance's datastore version."""
    group = owned(project_id, configuration_id)
    if group.datastore_version_id != version_id:
        raise errors.BadRequest(f"Configuration group {group.id} is for another datastore version.")
    return group


class ConfigurationService:
    def __init__(self, settings: Settings, taskmanager: TaskManagerClient) -> None:
        self._settings = settings
        self._taskmanager = taskmanager

    # Groups

    def create(self, caller: Caller, body: dict[str, Any]) -> Configuration:
        spec = body["configuration"]
        requested = spec.get("datastore") or {}
        version = catalog.version_for_create(
            requested.get("type") or self._settings.default_datastore, requested.get("version")
        )
        values = parameter_rules.checked(version, spec.get("values", {}))
        now = self._settings.clock()
        created: Configuration = Configuration.create(
            id=self._settings.new_id(),
            project_id=caller.project_id,
            name=spec["name"],
            description=spec.get("description"),
            datastore_version=version,
            values=values,
            created_at=now,
            updated_at=now,
        )
        return created

    def get(self, caller: Caller, configuration_id: str) -> Configuration:
        return owned(caller.project_id, configuration_id)

    def page(
        self, caller: Caller, limit: int, marker: str | None
    ) -> tuple[list[Configuration], str | None]:
        # The version and datastore come in the same query: a view names both.
        query = (
            Configuration.select(Configuration, DatastoreVersion, Datastore)
            .join(DatastoreVersion)
            .join(Datastore)
            .where(Configuration.project_id == caller.project_id)
        )
        if marker is not None:
            marked = self.get(caller, marker)
            query = query.where(
                (Configuration.created_at > marked.created_at)
                | ((Configuration.created_at == marked.created_at) & (Configuration.id > marked.id))
            )
        rows = list(query.order_by(Configuration.created_at, Configuration.id).limit(limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].id if more and rows else None)

    def instances_of(self, caller: Caller, configuration_id: str) -> list[Instance]:
        group = self.get(caller, configuration_id)
        return list(
            Instance.select()
            .where(Instance.configuration_id == group.id)
            .order_by(Instance.created_at, Instance.id)
        )

    def update(
        self, caller: Caller, configuration_id: str, body: dict[str, Any], merge: bool
    ) -> None:
        """PUT replaces the values (and name, description); PATCH merges values in. Every
        running instance attached gets the new values (a replication set's in the order
        its engine requires)."""
        group = self.get(caller, configuration_id)
        spec = body["configuration"]
        given = spec.get("values", {})
        values = {**group.values, **given} if merge else given
        values = parameter_rules.checked(group.datastore_version, values)
        attached = self.instances_of(caller, group.id)
        in_sets = _set_changes({instance.id: values for instance in attached})
        now = self._settings.clock()
        changes: dict[str, Any] = {"values": values, "updated_at": now}
        for field in ("name", "description"):
            if field in spec:
                changes[field] = spec[field]

        def put_back() -> None:
            Configuration.update(**{field: getattr(group, field) for field in changes}).where(
                Configuration.id == group.id
            ).execute()

        with tasks.starting(self._taskmanager, caller, now, undo=put_back) as start:
            Configuration.update(**changes).where(Configuration.id == group.id).execute()
            if values != group.values:
                self._start_applying(start, f"group {group.id} changed", attached, in_sets)
        self._answer_once_in_effect(start.started, f"Configuration group {group.id} changed")

    def _start_applying(
        self, start: tasks.Starts, summary: str, attached: list[Instance], in_sets: list[SetChange]
    ) -> None:
        """The tasks that give a group's new values to the running instances attached."""
        ordered = {member.id for change in in_sets for member in change.members}
        for change in in_sets:
            self._start_set_task(start, change, summary)
        for instance in attached:
            if instance.id not in ordered and _running(instance):
                self._start_task(start, instance, summary)

    def delete(self, caller: Caller, configuration_id: str) -> None:
        group = self.get(caller, configuration_id)
        attached = self.instances_of(caller, group.id)
        if attached:
            raise errors.BadRequest(
                f"Configuration group {group.id} is attached to {len(attached)} instance(s) "
                f"({', '.join(i.id for i in attached[:5])}); detach it first."
            )
        group.delete_instance()

    # Instances

    def attach(self, caller: Caller, instance: Instance, configuration_id: str) -> None:
        group = for_create(caller.project_id, configuration_id, instance.datastore_version_id)
        if instance.configuration_id and instance.configuration_id != group.id:
            raise errors.Conflict(
                f"Instance {instance.id} has configuration group {instance.configuration_id}; "
                "detach it first."
            )
        status.require_active(instance.id, instance.status)
        self._answer_once_in_effect(
            self._switch(caller, instance, group.id, f"group {group.id} attached"),
            f"Configuration group {group.id} is attached to instance {instance.id}",
        )

    def detach(self, caller: Caller, instance: Instance) -> None:
        if not instance.configuration_id:
            raise errors.BadRequest(f"Instance {instance.id} has no configuration group.")
        status.require_active(instance.id, instance.status)
        group_id = instance.configuration_id
        self._answer_once_in_effect(
            self._switch(caller, instance, None, f"group {group_id} detached"),
            f"Configuration group {group_id} is detached from instance {instance.id}",
        )

    def _switch(
        self, caller: Caller, instance: Instance, group_id: str | None, summary: str
    ) -> list[Task]:
        """Attach (or, with None, detach) a group: on a source, its replicas that share
        its group follow it. Returns the tasks that put the change in effect."""
        switching = [instance] + [
            replica
            for replica in replication_sets.replicas_of(instance.id)
            if replica.configuration_id == instance.configuration_id
        ]
        group = Configuration.get_or_none(Configuration.id == group_id) if group_id else None
        values = dict(group.values) if group is not None else {}
        in_sets = _set_changes({member.id: values for member in switching})
        ordered = {member.id for change in in_sets for member in change.members}
        now = self._settings.clock()

        def put_back() -> None:
            Instance.update(configuration_id=instance.configuration_id).where(
                Instance.id.in_([member.id for member in switching])
            ).execute()

        with tasks.starting(self._taskmanager, caller, now, undo=put_back) as start:
            Instance.update(configuration_id=group_id, updated_at=now).where(
                Instance.id.in_([member.id for member in switching])
            ).execute()
            for change in in_sets:
                self._start_set_task(start, change, summary)
            for member in switching:
                if member.id not in ordered and (member.id == instance.id or _running(member)):
                    self._start_task(start, member, summary)
        return start.started

    def _answer_once_in_effect(self, tasks_started: list[Task], done: str) -> None:
        """Return once the tasks that put a change of values in effect have ended, the
        dynamic values then live; 503 saying what was done and what was not if one failed,
        or had not ended within `configuration_wait` (it goes on). A replication set's
        ordered change (`configure_set`: hot-standby settings, which restart its members
        one after another) is not waited for: it takes restarts, not a reload."""
        started = [task for task in tasks_started if task.action == "configure"]
        if not started:
            return
        wait = self._settings.configuration_wait
        ended = {task.id: task for task in tasks.wait_until_ended([t.id for t in started], wait)}
        late = sorted({task.instance_id for task in started if task.id not in ended})
        if late:
            raise errors.ServiceUnavailable(
                f"{done}, but its values were not yet in effect on instance(s) "
                f"{', '.join(late)} after {wait:g} s (TROVE_SVC_CONFIGURATION_WAIT); their "
                "configure tasks go on (see the instance's tasks)."
            )
        for task in ended.values():
            if task.state == tasks.TaskState.FAILED:
                raise errors.ServiceUnavailable(
                    f"{done}, but putting its values in effect on instance {task.instance_id} "
                    f"failed: {audit.redact(task.message or 'no detail')}"
                )

    def _start_set_task(self, start: tasks.Starts, change: SetChange, summary: str) -> None:
        """One task, on the set's source, that changes its members in order."""
        start.task(
            self._settings.new_id(),
            change.source.id,
            "configure_set",
            args={
                "summary": summary,
                "order": change.order.value,
                "members": [member.id for member in change.members],
            },
        )

    def _start_task(self, start: tasks.Starts, instance: Instance, summary: str) -> None:
        start.task(self._settings.new_id(), instance.id, "configure", args={"summary": summary})


def _running(instance: Instance) -> bool:
    return bool(instance.status in RUNNING and instance.provisioned)


@dataclass(frozen=True)
class SetChange:
    """A change of hot-standby settings on several members of a replication set: one task
    on its source changes them, in `order`."""

    source: Instance
    order: hot_standby.Order
    members: list[Instance]


def _set_changes(changing: dict[str, dict[str, Any]]) -> list[SetChange]:
    """For each replication set that instances getting new group values (by id) are in: 400
    unless each replica can follow its source afterwards. The sets where the change moves
    settings replicas must hold at least as high as their source on more than one member,
    each with its running members in the order the engine requires (409 if the set is
    busy: that order is one task's)."""
    found = []
    sources = {
        instance.replica_of_id or instance.id
        for instance in Instance.select().where(Instance.id.in_(list(changing)))
    }
    for source in Instance.select().where(Instance.id.in_(sorted(sources))):
        replicas = replication_sets.replicas_of(source.id)
        if not replicas:
            continue
        in_set = {source.id} | {replica.id for replica in replicas}
        order, members = hot_standby.plan(
            source, replicas, {i: v for i, v in changing.items() if i in in_set}
        )
        running = [member for member in members if _running(member)]
        if order is not hot_standby.Order.ANY and len(running) > 1:
            replication_sets.require_set_idle(source)
            found.append(SetChange(source, order, running))
    return found
