"""The one place where failures become HTTP responses, all in Trove's error shape.

Every error body is ``{"<kind>": {"code": N, "message": "..."}}``; domain exceptions are
mapped to HTTP by class (and so by inheritance) with `add_error_handler`.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from trove_svc.domain import errors

LOG = logging.getLogger(__name__)

# Trove's name for each status code in an error body.
ERROR_KINDS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    422: "unprocessableEntity",
    500: "instanceFault",
    501: "notImplemented",
    503: "serviceUnavailable",
}

DOMAIN_TO_HTTP: list[tuple[type[errors.TroveSvcError], type[falcon.HTTPError]]] = [
    (errors.BadRequest, falcon.HTTPBadRequest),
    (errors.NotImplementedYet, falcon.HTTPBadRequest),
    (errors.Unauthorized, falcon.HTTPUnauthorized),
    (errors.Forbidden, falcon.HTTPForbidden),
    (errors.NotFound, falcon.HTTPNotFound),
    (errors.Conflict, falcon.HTTPConflict),
    (errors.OverLimit, falcon.HTTPContentTooLarge),
    (errors.FeatureNotBuilt, falcon.HTTPNotImplemented),
    (errors.UnsupportedMediaType, falcon.HTTPUnsupportedMediaType),
    (errors.Unprocessable, falcon.HTTPUnprocessableEntity),
    (errors.ServiceUnavailable, falcon.HTTPServiceUnavailable),
]


def error_body(code: int, message: str) -> dict[str, Any]:
    kind = ERROR_KINDS.get(code, "badRequest" if code < 500 else "instanceFault")
    return {kind: {"code": code, "message": message}}


def serialize_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    message = exc.description or exc.title or "Error"
    resp.content_type = falcon.MEDIA_JSON
    resp.media = error_body(exc.status_code, message)


def _raise_as(http_error: type[falcon.HTTPError]) -> Any:
    def handler(
        req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]
    ) -> None:
        message = exc.message if isinstance(exc, errors.TroveSvcError) else str(exc)
        if http_error is falcon.HTTPUnauthorized:
            raise falcon.HTTPUnauthorized(description=message, challenges=["Token"])
        raise http_error(description=message)  # type: ignore[call-arg]

    return handler


def not_found(routes: list[str]) -> Any:
    """Unknown URLs answer 404 naming the path, and the routes nearest to it."""

    def handler(
        req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]
    ) -> None:
        path = req.path if len(req.path) <= 200 else req.path[:200] + "..."
        near = nearest_routes(req.path, routes)
        hint = f" Routes near it: {', '.join(near)}." if near else ""
        raise falcon.HTTPNotFound(
            description=f"No route {path!r}.{hint} GET /openapi.json lists them all."
        )

    return handler


def nearest_routes(path: str, routes: list[str], most: int = 3) -> list[str]:
    """The route templates that share the longest leading run of segments with `path`."""
    asked = [part for part in path.split("/") if part]

    def shared(template: str) -> int:
        count = 0
        for mine, theirs in zip(asked, [p for p in template.split("/") if p], strict=False):
            if theirs.startswith("{") or mine == theirs:
                count += 1
            else:
                break
        return count

    scored = sorted(((shared(t), len(t), t) for t in routes), key=lambda s: (-s[0], s[1]))
    best = scored[0][0] if scored else 0
    return [t for score, _, t in scored if score == best and best > 0][:most]


def _unexpected(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]
) -> None:
    if isinstance(exc, falcon.HTTPError):
        raise exc
    LOG.exception("unexpected error on %s %s", req.method, req.path)
    raise falcon.HTTPInternalServerError(description="The server failed to process the request.")


def install(app: falcon.App[Any, Any], routes: list[str]) -> None:
    app.add_error_handler(Exception, _unexpected)
    for domain_error, http_error in DOMAIN_TO_HTTP:
        app.add_error_handler(domain_error, _raise_as(http_error))
    app.add_error_handler(falcon.HTTPRouteNotFound, not_found(routes))
    app.set_error_serializer(serialize_error)
