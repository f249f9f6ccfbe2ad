"""The OpenAPI 3.1 document, built from the routes the app serves and their schemas.

Nothing here is written by hand per route: paths come from the route table, request
bodies from each responder's `validate` schema, success codes from `answers`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import falcon

from trove_svc.api.errors import ERROR_KINDS

METHODS = ("get", "post", "put", "patch", "delete")
LIST_PARAMETERS = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
    },
    {"name": "marker", "in": "query", "required": False, "schema": {"type": "string"}},
]
ERROR_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 1,
    "propertyNames": {"enum": sorted(set(ERROR_KINDS.values()))},
    "additionalProperties": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
    },
}


class RouteLike(Protocol):
    @property
    def template(self) -> str: ...
    @property
    def resource(self) -> object: ...
    @property
    def suffix(self) -> str | None: ...


def answers(
    status: str, with_body: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Declare (and set) the success status of a responder that does not answer 200;
    such answers are empty unless `with_body`."""

    def decorator(responder: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(responder)
        def wrapper(
            self: Any, req: falcon.Request, resp: falcon.Response, *args: Any, **kwargs: Any
        ) -> None:
            responder(self, req, resp, *args, **kwargs)
            resp.status = status

        wrapper.success_status = status  # type: ignore[attr-defined]
        wrapper.success_body = with_body  # type: ignore[attr-defined]
        return wrapper

    return decorator


def _operation(route: RouteLike, name: str, responder: Any) -> dict[str, Any]:
    params = re.findall(r"{(\w+)}", route.template)
    status = str(getattr(responder, "success_status", falcon.HTTP_200)).split()[0]
    with_body = status == "200" or getattr(responder, "success_body", False)
    is_public = not getattr(route.resource, "auth_required", True)
    operation: dict[str, Any] = {
        "operationId": f"{type(route.resource).__name__}.{name}",
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "minLength": 1},
            }
            for name in params
        ],
        "responses": {
            status: {"description": "Success"}
            if not with_body
            else {
                "description": "Success",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "default": {
                "description": "An error, in Trove's shape",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        },
    }
    operation["responses"].update(getattr(responder, "documented_responses", {}))
    if getattr(responder, "paged", False):
        operation["parameters"] += LIST_PARAMETERS
    schema = getattr(responder, "request_schema", None)
    if schema is not None:
        operation["requestBody"] = {
            "required": "null" not in schema.get("type", []),
            "content": {"application/json": {"schema": schema}},
        }
    if is_public:
        operation["security"] = []
    if responder.__doc__:
        operation["description"] = responder.__doc__.strip()
    return operation


def responses(
    documented: dict[str, dict[str, Any]],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Document answers beyond success and the error shape (a health report's 503, say)."""

    def decorator(responder: Callable[..., None]) -> Callable[..., None]:
        responder.documented_responses = documented  # type: ignore[attr-defined]
        return responder

    return decorator


def paged(responder: Callable[..., None]) -> Callable[..., None]:
    """Mark a list responder: it takes `limit` and `marker` (see `paging.page`)."""
    responder.paged = True  # type: ignore[attr-defined]
    return responder


def document(routes: Iterable[RouteLike]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in routes:
        item: dict[str, Any] = {}
        for method in METHODS:
            name = f"on_{method}" + (f"_{route.suffix}" if route.suffix else "")
            responder = getattr(route.resource, name, None)
            if responder is not None:
                item[method] = _operation(route, name, responder)
        paths[route.template] = item
    paths["/openapi.json"] = {
        "get": {
            "operationId": "OpenApiDocument.on_get",
            "security": [],
            "responses": {
                "200": {
                    "description": "This document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trove-svc",
            "version": "1.0",
            "description": "Trove's v1.0 API as trove-svc serves it.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}
            },
        },
        "security": [{"token": []}],
    }


class OpenApiDocument:
    auth_required = False

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._document
