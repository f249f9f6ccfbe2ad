"""Thin responders for instances, their actions and their audit trail; one class per URI
shape, the work done by the domain (`trove_svc.domain.instances`, `trove_svc.domain.audit`)."""

from __future__ import annotations

import falcon

from trove_svc.api import schemas, views
from trove_svc.api.middleware import caller_of
from trove_svc.api.openapi import answers, paged
from trove_svc.api.paging import Page, body, page
from trove_svc.api.validation import validate
from trove_svc.domain import audit, errors
from trove_svc.domain.configurations import ConfigurationService
from trove_svc.domain.instances import InstanceService
from trove_svc.domain.replication_sets import replicas_of


def require_admin(req: falcon.Request) -> None:
    if not req.context.identity.is_admin:
        raise errors.Forbidden("This needs the admin role.")


class Instances:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        wanted = Page.of(req)
        rows, next_marker = self._service.list_page(
            caller_of(req, project_id), wanted.limit, wanted.marker
        )
        items = [views.instance(req.prefix, i, s) for i, s in rows]
        resp.media = body(req, "instances", items, wanted, next_marker)

    on_get_detail = on_get

    @validate(schemas.INSTANCE_CREATE)
    def on_post(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        caller = caller_of(req, project_id)
        instance = self._service.create(caller, req.get_media())
        created, status = self._service.get(caller, instance.id)
        resp.media = {"instance": views.instance(req.prefix, created, status)}


class InstanceItem:
    def __init__(self, service: InstanceService, groups: ConfigurationService) -> None:
        self._service = service
        self._groups = groups

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        instance, status = self._service.get(caller_of(req, project_id), instance_id)
        shown = views.instance(req.prefix, instance, status)
        shown.update(views.replicas(req.prefix, instance, replicas_of(instance.id)))
        resp.media = {"instance": shown}

    @answers(falcon.HTTP_202)
    def on_delete(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._service.delete(caller_of(req, project_id), instance_id)

    @answers(falcon.HTTP_202)
    @validate(schemas.INSTANCE_UPDATE)
    def on_put(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        """Rename, change access, detach a replica, or attach (detach) a configuration
        group: that answers once the group's values are in effect (503 if not within
        TROVE_SVC_CONFIGURATION_WAIT)."""
        caller = caller_of(req, project_id)
        self._service.get(caller, instance_id)
        changes = req.get_media()["instance"]
        for field in ("replica_of", "slave_of"):
            # Empty detaches as null does: Trove's own clients send "".
            if changes.get(field):
                raise errors.BadRequest(
                    f'{field} can only be set to null or "" (detach the replica); a '
                    "replica is made by a create with replica_of."
                )
        if "replica_of" in changes or "slave_of" in changes:
            self._service.detach_replica(caller, instance_id)
        if "name" in changes:
            self._service.rename(caller, instance_id, changes["name"])
        if "access" in changes:
            self._service.update_access(caller, instance_id, changes["access"])
        if "configuration" in changes:
            instance, _ = self._service.get(caller, instance_id)
            if changes["configuration"]:
                self._groups.attach(caller, instance, changes["configuration"])
            else:
                self._groups.detach(caller, instance)

    on_patch = on_put


class InstanceAction:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @answers(falcon.HTTP_202)
    @validate(schemas.INSTANCE_ACTION)
    def on_post(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        caller = caller_of(req, project_id)
        self._service.get(caller, instance_id)
        (action, args), *_ = req.get_media().items()
        if action == "restart":
            self._service.restart(caller, instance_id)
        elif action == "resize" and "volume" in args:
            self._service.resize_volume(caller, instance_id, args["volume"]["size"])
        elif action == "resize":
            self._service.resize_flavor(caller, instance_id, args["flavorRef"])
        elif action == "promote_to_replica_source":
            self._service.promote_to_replica_source(caller, instance_id)
        elif action == "eject_replica_source":
            self._service.eject_replica_source(caller, instance_id)
        elif action == "rejoin_replica_source":
            self._service.rejoin_replica_source(caller, instance_id)
        elif action == "reset_status":
            require_admin(req)
            self._service.reset_status(caller, instance_id)
        else:
            raise errors.NotImplementedYet(f"trove-svc does not support the {action} action yet.")


class MgmtInstances:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @paged
    def on_get(self, req: falcon.Request, resp: falcon.Response, project_id: str) -> None:
        require_admin(req)
        wanted = Page.of(req)
        rows, next_marker = self._service.list_page_all(wanted.limit, wanted.marker)
        items = [views.mgmt_instance(req.prefix, i, s) for i, s in rows]
        resp.media = body(req, "instances", items, wanted, next_marker)


class MgmtInstance:
    def __init__(self, service: InstanceService) -> None:
        self._service = service

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        require_admin(req)
        instance, status = self._service.get_any(instance_id)
        resp.media = {"instance": views.mgmt_instance(req.prefix, instance, status)}


class InstanceTasks:
    """The audit trail (beyond Trove): every task run on the instance."""

    def __init__(self, service: InstanceService) -> None:
        self._service = service

    @paged
    def on_get(
        self, req: falcon.Request, resp: falcon.Response, project_id: str, instance_id: str
    ) -> None:
        self._service.get(caller_of(req, project_id), instance_id)
        resp.media = page(req, "tasks", audit.task_views(instance_id))


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
        self._service.get(caller_of(req, project_id), instance_id)
        resp.media = {"task": audit.task_detail_of(instance_id, task_id)}
