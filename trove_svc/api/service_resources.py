"""The service's own routes: versions, the health check, metrics (no token needed)."""

from __future__ import annotations

from typing import Any

import falcon

from trove_svc.api.openapi import responses
from trove_svc.bus.client import Bus
from trove_svc.domain import errors
from trove_svc.process import health, metrics
from trove_svc.process.settings import Settings


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
            "links": [{"href": f"{req.prefix}/v1.0/", "rel": "self"}],
        }


class Version:
    auth_required = False

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"version": Versions.version(req)}


_HEALTH_REPORT = {
    "type": "object",
    "required": ["status", "missing", "checks", "sees"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "missing": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "sees": {
            "description": "What this node sees: the store's engine, the broker node it "
            "reaches (null: none), and the task managers and conductors of every node seen "
            "lately (null: the store does not answer)",
            "type": "object",
            "required": ["store", "broker_node", "taskmanagers", "conductors"],
            "properties": {
                "store": {"type": "string"},
                "broker_node": {"type": ["string", "null"]},
                "taskmanagers": {"type": ["integer", "null"]},
                "conductors": {"type": ["integer", "null"]},
            },
        },
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


class NotBuilt:
    """A route Trove has that trove-svc does not build yet."""

    def __init__(self, feature: str) -> None:
        self._feature = feature

    def _refuse(self, req: falcon.Request, resp: falcon.Response, **params: str) -> None:
        raise errors.FeatureNotBuilt(
            f"{self._feature.capitalize()} are not built in trove-svc yet "
            f"({req.method} {req.path[:200]})."
        )

    on_get = on_post = on_put = on_patch = on_delete = _refuse
