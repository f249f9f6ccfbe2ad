"""Configuration groups (Trove's `/configurations`) and an instance's configuration."""

from __future__ import annotations

import falcon

from trove_svc.api import schemas, views
from trove_svc.api.middleware import caller_of
from trove_svc.api.openapi import answers, paged
from trove_svc.api.paging import Page, body
from trove_svc.api.validation import validate
from trove_svc.bus.messages import GuestClient
from trove_svc.domain import status
from trove_svc.domain.configurations import ConfigurationService
from trove_svc.domain.instances import InstanceService
from trove_wire import contract


class Configurations:
    def __init__(self, service: ConfigurationService) -> None:
        self._service = service

    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        wanted = Page.of(req)
        rows, next_marker = self._service.page(
            caller_of(req, project_id), wanted.limit, wanted.marker
        )
        items = [views.configuration(req.prefix, row) for row in rows]
        resp.media = body(req, "configurations", items, wanted, next_marker)

    @validate(schemas.CONFIGURATION_CREATE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        made = self._service.create(caller_of(req, project_id), req.get_media())
        resp.media = {"configuration": views.configuration(req.prefix, made, 0)}


class ConfigurationItem:
    def __init__(self, service: ConfigurationService) -> None:
        self._service = service

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, configuration_id: str
    ) -> None:
        caller = caller_of(req, project_id)
        group = self._service.get(caller, configuration_id)
        count = len(self._service.instances_of(caller, configuration_id))
        resp.media = {"configuration": views.configuration(req.prefix, group, count)}

    @answers(falcon.HTTP_202)
    @validate(schemas.CONFIGURATION_UPDATE)
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, configuration_id: str
    ) -> None:
        """Replace the group's values; answers once they are in effect on the running
        instances attached (503 if not within TROVE_SVC_CONFIGURATION_WAIT)."""
        caller = caller_of(req, project_id)
        self._service.update(caller, configuration_id, req.get_media(), merge=False)

    @validate(schemas.CONFIGURATION_UPDATE)
    def on_patch(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, configuration_id: str
    ) -> None:
        """Merge values into the group; answers once they are in effect on the running
        instances attached (503 if not within TROVE_SVC_CONFIGURATION_WAIT)."""
        caller = caller_of(req, project_id)
        self._service.update(caller, configuration_id, req.get_media(), merge=True)
        group = self._service.get(caller, configuration_id)
        resp.media = {"configuration": views.configuration(req.prefix, group)}

    @answers(falcon.HTTP_202)
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, configuration_id: str
    ) -> None:
        self._service.delete(caller_of(req, project_id), configuration_id)


class ConfigurationInstances:
    def __init__(self, service: ConfigurationService) -> None:
        self._service = service

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, configuration_id: str
    ) -> None:
        rows = self._service.instances_of(caller_of(req, project_id), configuration_id)
        resp.media = {"instances": [{"id": row.id, "name": row.name} for row in rows]}


class InstanceConfiguration:
    """The tunable parameters' values in effect on the instance, asked of its engine."""

    def __init__(self, instances: InstanceService, guest: GuestClient) -> None:
        self._instances = instances
        self._guest = guest

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        caller = caller_of(req, project_id)
        instance, _ = self._instances.get(caller, instance_id)
        status.require_active(instance.id, instance.status)
        shown = self._guest.call(instance.id, contract.ShowConfiguration(), caller.context)
        resp.media = {"instance": {"configuration": shown}}
