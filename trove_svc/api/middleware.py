"""Request middleware: body size limit, request ids, and authentication by X-Auth-Token."""

from __future__ import annotations

import time
import uuid
from typing import Any, Protocol

import falcon

from trove_svc.domain import errors
from trove_svc.process import metrics
from trove_svc.security import tokens
from trove_svc.security.caller import Caller
from trove_svc.security.keystone import KeystoneUnavailable
from trove_wire import logs
from trove_wire.envelope import Context


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

    The project in the path must be the token's project; admins may act on any project.
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


def caller_of(req: falcon.Request, project_id: str) -> Caller:
    """Who a request acts as, for the project in its path (checked by AuthMiddleware)."""
    return Caller(project_id=project_id, context=req.context.bus_context)
