"""Thin responders, one class per URI shape; the work happens in the domain modules."""

from __future__ import annotations

from typing import Any

import falcon

from trove_svc import errors
from trove_svc.api import schemas, views
from trove_svc.api.paging import page
from trove_svc.api.validation import validate
from trove_svc.instances import Caller, InstanceService
from trove_svc.store.models import Datastore, DatastoreVersion, Flavor


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


class Version:
    auth_required = False

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"version": Versions.version(req)}


class Flavors:
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
        row = DatastoreVersion.get_or_none(
            (DatastoreVersion.datastore == _datastore(datastore))
            & ((DatastoreVersion.name == version) | (DatastoreVersion.id == version))
        )
        if row is None:
            raise errors.NotFound(f"Datastore version '{version}' cannot be found.")
        resp.media = {"version": views.datastore_version(_base(req), project_id, row)}


class DatastoreVersionById:
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, version_id: str
    ) -> None:
        row = DatastoreVersion.get_or_none(DatastoreVersion.id == version_id)
        if row is None:
            raise errors.NotFound(f"Datastore version '{version_id}' cannot be found.")
        resp.media = {"version": views.datastore_version(_base(req), project_id, row)}


class Instances:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        rows = self._service.list(_caller(req, project_id))
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

    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._service.delete(_caller(req, project_id), instance_id)
        resp.status = falcon.HTTP_202
