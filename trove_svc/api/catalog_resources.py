"""Catalog routes: flavors, datastores, their versions and parameters, and limits."""

from __future__ import annotations

import falcon

from trove_svc.api import views
from trove_svc.api.openapi import paged
from trove_svc.api.paging import page
from trove_svc.domain import catalog, quotas
from trove_svc.process.settings import Settings


class Flavors:
    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        rows = [views.flavor(req.prefix, project_id, r) for r in catalog.flavors()]
        resp.media = page(req, "flavors", rows)


class FlavorItem:
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, flavor_id: str
    ) -> None:
        resp.media = {"flavor": views.flavor(req.prefix, project_id, catalog.flavor(flavor_id))}


class VersionFlavors:
    """Flavors a datastore version can run on: all of them, on the local provider."""

    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, version_id: str
    ) -> None:
        catalog.version_by_id(version_id)
        rows = [views.flavor(req.prefix, project_id, r) for r in catalog.flavors()]
        resp.media = page(req, "flavors", rows)


class Datastores:
    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        rows = [
            views.datastore(req.prefix, project_id, row, versions)
            for row, versions in catalog.datastores_with_versions()
        ]
        resp.media = page(req, "datastores", rows)


class DatastoreItem:
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, datastore: str
    ) -> None:
        row = catalog.datastore(datastore)
        body = views.datastore(req.prefix, project_id, row, catalog.versions(row))
        resp.media = {"datastore": body}


class DatastoreVersions:
    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, datastore: str
    ) -> None:
        rows = catalog.versions(catalog.datastore(datastore))
        resp.media = page(
            req, "versions", [views.datastore_version(req.prefix, project_id, v) for v in rows]
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
        row = catalog.version_by_name(datastore, version)
        resp.media = {"version": views.datastore_version(req.prefix, project_id, row)}


class DatastoreVersionById:
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, version_id: str
    ) -> None:
        row = catalog.version_by_id(version_id)
        resp.media = {"version": views.datastore_version(req.prefix, project_id, row)}


class VersionParameters:
    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, version_id: str
    ) -> None:
        rows = catalog.parameters(catalog.version_by_id(version_id))
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
        resp.media = catalog.parameter(catalog.version_by_id(version_id), name)


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
        rows = catalog.parameters(catalog.version_by_name(datastore, version))
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
        resp.media = catalog.parameter(catalog.version_by_name(datastore, version), name)


class Limits:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        resp.media = {"limits": quotas.limits(self._settings, project_id)}
