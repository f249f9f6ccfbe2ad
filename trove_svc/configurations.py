"""Configuration groups (Trove's `/configurations`): parameter values for the instances of
one datastore version, checked against the engine's own rules before anything is stored.

Attaching, detaching, or changing a group casts a `configure` task for each instance it
touches; the task manager writes the values to the datastore's file and applies the
dynamic ones at once (trove_svc.taskmanager.configure_flow). Each task is in that
instance's audit trail.
"""

from __future__ import annotations

from typing import Any

from trove_svc import catalog, errors, parameter_rules, status, tasks
from trove_svc.bus.messages import RunTask, TaskManagerClient
from trove_svc.caller import Caller
from trove_svc.settings import Settings
from trove_svc.store.models import (
    Configuration,
    Datastore,
    DatastoreVersion,
    Instance,
    Task,
    database_proxy,
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
        running instance attached gets the new values."""
        group = self.get(caller, configuration_id)
        spec = body["configuration"]
        given = spec.get("values", {})
        values = {**group.values, **given} if merge else given
        values = parameter_rules.checked(group.datastore_version, values)
        changes: dict[str, Any] = {"values": values, "updated_at": self._settings.clock()}
        for field in ("name", "description"):
            if field in spec:
                changes[field] = spec[field]
        Configuration.update(**changes).where(Configuration.id == group.id).execute()
        if values != group.values:
            for instance in self.instances_of(caller, group.id):
                if instance.status in RUNNING and instance.provisioned:
                    self._cast(caller, instance, f"group {group.id} changed")

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
        self._switch(caller, instance, group.id, f"group {group.id} attached")

    def detach(self, caller: Caller, instance: Instance) -> None:
        if not instance.configuration_id:
            raise errors.BadRequest(f"Instance {instance.id} has no configuration group.")
        status.require_active(instance.id, instance.status)
        self._switch(caller, instance, None, f"group {instance.configuration_id} detached")

    def _switch(
        self, caller: Caller, instance: Instance, group_id: str | None, summary: str
    ) -> None:
        with database_proxy.atomic():
            Instance.update(configuration_id=group_id, updated_at=self._settings.clock()).where(
                Instance.id == instance.id
            ).execute()
            task_id = self._record(caller, instance, summary)
        try:
            self._taskmanager.run_task(RunTask(task_id, instance.id), caller.context)
        except errors.ServiceUnavailable:
            with database_proxy.atomic():
                Task.delete().where(Task.id == task_id).execute()
                Instance.update(configuration_id=instance.configuration_id).where(
                    Instance.id == instance.id
                ).execute()
            raise

    def _record(self, caller: Caller, instance: Instance, summary: str) -> str:
        task_id = self._settings.new_id()
        tasks.record(
            task_id,
            instance.id,
            caller.project_id,
            "configure",
            caller.context.user,
            caller.context.request_id,
            self._settings.clock(),
            args={"summary": summary},
        )
        return task_id

    def _cast(self, caller: Caller, instance: Instance, summary: str) -> None:
        task_id = self._record(caller, instance, summary)
        self._taskmanager.run_task(RunTask(task_id, instance.id), caller.context)
