"""Request middleware: body size limit, request ids, and authentication by X-Auth-Token."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any, Protocol

import falcon

from trove_svc.domain import errors, owners
from trove_svc.process import metrics
from trove_svc.security import tokens
from trove_svc.security.caller import Caller
from trove_svc.security.keystone import KeystoneUnavailable
from trove_wire import logs
from trove_wire.envelope import Context

LOG = logging.getLogger(__name__)


class BodySizeLimit:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is not None and req.content_length > self._max_bytes:
            raise falcon.HTTPContentTooLarge(
                description=f"Request body is larger than {self._max_bytes} bytes."
            )


class RequestId:
    """Every request gets an id (returned in Trove's header) and is timed for /metrics."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.request_id = "req-" + str(uuid.uuid4())
        req.context.started = time.perf_counter()
        req.context.log_scope = logs.serving(req.context.request_id)
        req.context.log_scope.__enter__()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        resp.set_header("X-Openstack-Request-Id", req.context.request_id)
        route = req.uri_template or "unrouted"
        metrics.get().requests.labels(route, req.method, str(resp.status)[:3]).observe(
            time.perf_counter() - req.context.started
        )
        req.context.log_scope.__exit__(None, None, None)


class Authenticator(Protocol):
    def identify(self, token: str) -> tokens.Identity | None: ...


class TokenAuth:
    """Resources are authenticated unless they set ``auth_required = False``.

    The project in the path must be the token's project; admins may act on any project,
    and on a resource named by id in the resource's own project (`act_in_owners_project`).
    """

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: dict[str, Any]
    ) -> None:
        if resource is None or not getattr(resource, "auth_required", True):
            return
        token = req.get_header("X-Auth-Token")
        try:
            identity = self._authenticator.identify(token) if token else None
        except KeystoneUnavailable as exc:
            raise errors.ServiceUnavailable("The identity service is unavailable.") from exc
        if identity is None:
            raise errors.Unauthorized("This server could not verify that you are authorized.")
        project_id = params.get("project_id")
        if project_id is not None and project_id != identity.project_id and not identity.is_admin:
            raise errors.Forbidden(f"Token is not valid for project {project_id}.")
        req.context.identity = identity
        req.context.bus_context = Context(
            project=identity.project_id, user=identity.user, request_id=req.context.request_id
        )
        if identity.is_admin and project_id is not None:
            act_in_owners_project(identity, params)


def act_in_owners_project(identity: tokens.Identity, params: dict[str, Any]) -> None:
    """An admin's request on a resource named by id (an instance and what lies under it, a
    backup, a configuration group) acts in the resource's project, whatever project the
    path names: the responder gets that project as `project_id`, so the resource is found
    and its project's quotas, tasks and audit trail are the ones used. The audit trail
    names the admin (the bus context's user and project); the log says it too."""
    owner = owners.project_of(params)
    if owner is None or owner == params["project_id"]:
        return
    LOG.info(
        "admin %s of project %s acts in project %s (the path names project %s)",
        identity.user,
        identity.project_id,
        owner,
        params["project_id"],
    )
    params["project_id"] = owner


def caller_of(req: falcon.Request, project_id: str) -> Caller:
    """Who a request acts as, in `project_id`: the path's, checked by TokenAuth (for an
    admin, the project of the resource the path names, set by TokenAuth)."""
    return Caller(project_id=project_id, context=req.context.bus_context)
