"""Backups (Trove's routes), their strategies, and schedules of an instance (beyond Trove)."""

from __future__ import annotations

import falcon

from trove_svc.api import schemas, views
from trove_svc.api.middleware import caller_of
from trove_svc.api.openapi import answers, paged
from trove_svc.api.paging import Page, body
from trove_svc.api.validation import validate
from trove_svc.domain import strategies
from trove_svc.domain.backups import BackupService
from trove_svc.domain.instances import InstanceService
from trove_svc.domain.schedules import ScheduleService
from trove_svc.process.settings import Settings


class Backups:
    def __init__(self, service: BackupService) -> None:
        self._service = service

    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        wanted = Page.of(req)
        rows, next_marker = self._service.page(
            caller_of(req, project_id),
            wanted.limit,
            wanted.marker,
            instance_id=req.get_param("instance_id"),
            datastore=req.get_param("datastore"),
        )
        items = [views.backup(req.prefix, row) for row in rows]
        resp.media = body(req, "backups", items, wanted, next_marker)

    @answers(falcon.HTTP_202, with_body=True)
    @validate(schemas.BACKUP_CREATE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        made = self._service.create(caller_of(req, project_id), req.get_media())
        resp.media = {"backup": views.backup(req.prefix, made)}


class BackupItem:
    def __init__(self, service: BackupService) -> None:
        self._service = service

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, backup_id: str
    ) -> None:
        found = self._service.get(caller_of(req, project_id), backup_id)
        resp.media = {"backup": views.backup(req.prefix, found)}

    @answers(falcon.HTTP_202)
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, backup_id: str
    ) -> None:
        self._service.delete(caller_of(req, project_id), backup_id)


class InstanceBackups:
    def __init__(self, service: BackupService) -> None:
        self._service = service

    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        wanted = Page.of(req)
        rows, next_marker = self._service.page_of_instance(
            caller_of(req, project_id), instance_id, wanted.limit, wanted.marker
        )
        items = [views.backup(req.prefix, row) for row in rows]
        resp.media = body(req, "backups", items, wanted, next_marker)


class BackupStrategies:
    def __init__(self, instances: InstanceService, settings: Settings) -> None:
        self._instances = instances
        self._settings = settings

    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        rows = strategies.listing(project_id, req.get_param("instance_id"))
        resp.media = {"backup_strategies": [views.backup_strategy(r) for r in rows]}

    @validate(schemas.BACKUP_STRATEGY_CREATE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        spec = req.get_media()["backup_strategy"]
        if spec.get("instance_id"):
            self._instances.get(caller_of(req, project_id), spec["instance_id"])
        row = strategies.choose(
            project_id,
            spec.get("instance_id"),
            spec.get("backend")
            or (strategies.S3 if spec.get("swift_container") else strategies.LOCAL),
            spec.get("swift_container"),
            now=self._settings.clock(),
        )
        resp.media = {"backup_strategy": views.backup_strategy(row)}

    @answers(falcon.HTTP_202)
    def on_delete(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        strategies.forget(project_id, req.get_param("instance_id"))


class Schedules:
    def __init__(self, service: ScheduleService) -> None:
        self._service = service

    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        rows = self._service.listing(caller_of(req, project_id), instance_id)
        resp.media = {"schedules": [views.schedule(r) for r in rows]}

    @validate(schemas.SCHEDULE_CREATE)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        row = self._service.create(caller_of(req, project_id), instance_id, req.get_media())
        resp.media = {"schedule": views.schedule(row)}


class ScheduleItem:
    def __init__(self, service: ScheduleService) -> None:
        self._service = service

    @answers(falcon.HTTP_202)
    def on_delete(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        project_id: str,
        instance_id: str,
        schedule_id: str,
    ) -> None:
        self._service.delete(caller_of(req, project_id), instance_id, schedule_id)
