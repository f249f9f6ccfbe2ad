"""Thin responders, one class per URI shape; the work happens in the domain modules."""

from __future__ import annotations

from typing import Any

import falcon

from trove_svc import audit, errors, health, metrics, parameters, quotas
from trove_svc.api import schemas, views
from trove_svc.api.openapi import answers, paged, responses
from trove_svc.api.paging import page
from trove_svc.api.validation import validate
from trove_svc.bus.client import Bus
from trove_svc.instances import Caller, InstanceService
from trove_svc.settings import Settings
from trove_svc.store.models import Datastore, DatastoreVersion, Flavor, Task


def _caller(req: falcon.Request, project_id: str) -> Caller:
    return Caller(project_id=project_id, context=req.context.bus_context)


def _base(req: falcon.Request) -> str:
    return req.prefix


class Versions:
    auth_required = False

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"versions": [self.version(req)]}

    @staticmethod
    def version(req: falcon.Request) -> dict[str, Any]:
        return {
            "id": "v1.0",
            "status": "CURRENT",
            "updated": "2012-08-01T00:00:00Z",
            "links": [{"href": f"{_base(req)}/v1.0/", "rel": "self"}],
        }


_HEALTH_REPORT = {
    "type": "object",
    "required": ["status", "missing", "checks"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "missing": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


class HealthCheck:
    """For load balancers: 200 when every part answers, 503 naming what is missing."""

    auth_required = False

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self._settings = settings
        self._bus = bus

    @responses(
        {
            code: {
                "description": text,
                "content": {"application/json": {"schema": _HEALTH_REPORT}},
            }
            for code, text in (("200", "Every part answers"), ("503", "A part is missing"))
        }
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        healthy, report = health.check(self._settings, self._bus)
        resp.status = falcon.HTTP_200 if healthy else falcon.HTTP_503
        resp.media = report


class Metrics:
    """Prometheus' text format: requests, tasks, heartbeats, refused messages, instances."""

    auth_required = False

    @responses(
        {
            "200": {
                "description": "Prometheus' text exposition format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        }
    )
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body, content_type = metrics.exposition()
        resp.data = body
        resp.content_type = content_type


class Version:
    auth_required = False

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"version": Versions.version(req)}


class Flavors:
    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        rows = Flavor.select().order_by(Flavor.ram, Flavor.id)
        resp.media = page(req, "flavors", [views.flavor(_base(req), project_id, r) for r in rows])


class FlavorItem:
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, flavor_id: str
    ) -> None:
        row = Flavor.get_or_none(Flavor.id == flavor_id)
        if row is None:
            raise errors.NotFound(f"Flavor {flavor_id} could not be found.")
        resp.media = {"flavor": views.flavor(_base(req), project_id, row)}


def _datastore(name_or_id: str) -> Datastore:
    row = Datastore.get_or_none((Datastore.id == name_or_id) | (Datastore.name == name_or_id))
    if row is None:
        raise errors.NotFound(f"Datastore '{name_or_id}' cannot be found.")
    return row


def _versions(datastore: Datastore) -> list[DatastoreVersion]:
    return list(datastore.versions.order_by(DatastoreVersion.name))


class Datastores:
    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        rows = Datastore.select().order_by(Datastore.name)
        resp.media = page(
            req,
            "datastores",
            [views.datastore(_base(req), project_id, r, _versions(r)) for r in rows],
        )


class DatastoreItem:
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, datastore: str
    ) -> None:
        row = _datastore(datastore)
        resp.media = {"datastore": views.datastore(_base(req), project_id, row, _versions(row))}


class DatastoreVersions:
    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, datastore: str
    ) -> None:
        rows = _versions(_datastore(datastore))
        resp.media = page(
            req, "versions", [views.datastore_version(_base(req), project_id, v) for v in rows]
        )


class DatastoreVersionItem:
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        datastore: str,
        version: str,
    ) -> None:
        row = _version_by_name(datastore, version)
        resp.media = {"version": views.datastore_version(_base(req), project_id, row)}


class DatastoreVersionById:
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, version_id: str
    ) -> None:
        row = _version_by_id(version_id)
        resp.media = {"version": views.datastore_version(_base(req), project_id, row)}


class Instances:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        rows = self._service.list_for(_caller(req, project_id))
        resp.media = page(req, "instances", [views.instance(_base(req), i, s) for i, s in rows])

    on_get_detail = on_get

    @validate(schemas.INSTANCE_CREATE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        caller = _caller(req, project_id)
        instance = self._service.create(caller, req.get_media())
        _, status = self._service.get(caller, instance.id)
        resp.media = {"instance": views.instance(_base(req), instance, status)}


class InstanceItem:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        instance, status = self._service.get(_caller(req, project_id), instance_id)
        resp.media = {"instance": views.instance(_base(req), instance, status)}

    @answers(falcon.HTTP_202)
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._service.delete(_caller(req, project_id), instance_id)

    @answers(falcon.HTTP_202)
    @validate(schemas.INSTANCE_UPDATE)
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        caller = _caller(req, project_id)
        self._service.get(caller, instance_id)
        changes = req.get_media()["instance"]
        unbuilt = sorted(set(changes) - {"name", "access"})
        if unbuilt:
            raise errors.NotImplementedYet(
                f"Changing {', '.join(unbuilt)} is not supported by trove-svc yet."
            )
        if "name" in changes:
            self._service.rename(caller, instance_id, changes["name"])
        if "access" in changes:
            self._service.update_access(caller, instance_id, changes["access"])

    on_patch = on_put


def require_admin(req: falcon.Request) -> None:
    if not req.context.identity.is_admin:
        raise errors.Forbidden("This needs the admin role.")


class InstanceAction:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @answers(falcon.HTTP_202)
    @validate(schemas.INSTANCE_ACTION)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        caller = _caller(req, project_id)
        self._service.get(caller, instance_id)
        (action, args), *_ = req.get_media().items()
        if action == "restart":
            self._service.restart(caller, instance_id)
        elif action == "resize" and "volume" in args:
            self._service.resize_volume(caller, instance_id, args["volume"]["size"])
        elif action == "resize":
            self._service.resize_flavor(caller, instance_id, args["flavorRef"])
        elif action == "reset_status":
            require_admin(req)
            self._service.reset_status(instance_id)
        else:
            raise errors.NotImplementedYet(f"trove-svc does not support the {action} action yet.")


class Limits:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        resp.media = {"limits": quotas.limits(self._settings, project_id)}


class VersionFlavors:
    """Flavors a datastore version can run on: all of them, on the local provider."""

    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, version_id: str
    ) -> None:
        _version_by_id(version_id)
        rows = Flavor.select().order_by(Flavor.ram, Flavor.id)
        resp.media = page(req, "flavors", [views.flavor(_base(req), project_id, r) for r in rows])


class MgmtInstances:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        require_admin(req)
        rows = self._service.list_all()
        resp.media = page(
            req, "instances", [views.mgmt_instance(_base(req), i, s) for i, s in rows]
        )


class MgmtInstance:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        require_admin(req)
        instance, status = self._service.get_any(instance_id)
        resp.media = {"instance": views.mgmt_instance(_base(req), instance, status)}


def _version_by_id(version_id: str) -> DatastoreVersion:
    row = DatastoreVersion.get_or_none(DatastoreVersion.id == version_id)
    if row is None:
        raise errors.NotFound(f"Datastore version '{version_id}' cannot be found.")
    return row


def _version_by_name(datastore: str, version: str) -> DatastoreVersion:
    row = DatastoreVersion.get_or_none(
        (DatastoreVersion.datastore == _datastore(datastore))
        & ((DatastoreVersion.name == version) | (DatastoreVersion.id == version))
    )
    if row is None:
        raise errors.NotFound(f"Datastore version '{version}' cannot be found.")
    return row


def _parameters_of(version: DatastoreVersion) -> list[dict[str, Any]]:
    return [p.view(version.id) for p in parameters.for_datastore(version.datastore.name)]


def _parameter(version: DatastoreVersion, name: str) -> dict[str, Any]:
    for found in _parameters_of(version):
        if found["name"] == name:
            return found
    raise errors.NotFound(f"Parameter '{name}' is not known for {version.datastore.name}.")


class VersionParameters:
    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, version_id: str
    ) -> None:
        rows = _parameters_of(_version_by_id(version_id))
        resp.media = page(req, "configuration-parameters", rows, key="name")


class VersionParameter:
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        version_id: str,
        name: str,
    ) -> None:
        resp.media = _parameter(_version_by_id(version_id), name)


class NamedVersionParameters:
    @paged
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        datastore: str,
        version: str,
    ) -> None:
        rows = _parameters_of(_version_by_name(datastore, version))
        resp.media = page(req, "configuration-parameters", rows, key="name")


class NamedVersionParameter:
    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        datastore: str,
        version: str,
        name: str,
    ) -> None:
        resp.media = _parameter(_version_by_name(datastore, version), name)


def _tasks_of(instance_id: str) -> Any:
    return Task.select().where(Task.instance_id == instance_id).order_by(Task.created_at, Task.id)


class InstanceTasks:
    """The audit trail (beyond Trove): every task run on the instance."""

    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._service.get(_caller(req, project_id), instance_id)
        rows = [audit.task_view(t) for t in _tasks_of(instance_id)]
        resp.media = page(req, "tasks", rows)


class InstanceTask:
    """One task with the Ansible steps it ran (names, outcome, timing, failure message)."""

    def __init__(self, service: InstanceService) -> None:
        self._service = service

    def on_get(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        task_id: str,
    ) -> None:
        self._service.get(_caller(req, project_id), instance_id)
        task = Task.get_or_none((Task.id == task_id) & (Task.instance_id == instance_id))
        if task is None:
            raise errors.NotFound(f"Task {task_id} could not be found.")
        resp.media = {"task": audit.task_detail(task)}
