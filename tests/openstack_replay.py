"""A replay of the OpenStack APIs the compute_openstack role drives, for tests.

One threaded HTTP server on loopback answers as Keystone v3, Nova, Cinder v3, Neutron and
Glance, laid out under one port as devstack serves them (/identity, /compute/v2.1,
/volume/v3/<project>, /networking, /image). Bodies follow the services' own shapes; every
request is recorded, failures can be injected, and what is left behind can be listed.

This module holds the server, the recording and the dispatch; each service's handlers are
mixins in the modules beside it (tests/openstack_replay_*.py), sharing the cloud's state
from tests/openstack_replay_base.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.openstack_replay_base import ApiError, Call, Handler, Reply, hex_id, new_uuid
from tests.openstack_replay_cinder import CINDER_MAX_VERSION, CinderReplay
from tests.openstack_replay_glance import GlanceReplay
from tests.openstack_replay_keystone import KeystoneReplay
from tests.openstack_replay_nova import NOVA_MAX_VERSION
from tests.openstack_replay_nova_volumes import NovaVolumeAttachments
from tests.openstack_replay_security_groups import NeutronSecurityGroups

__all__ = ["ApiError", "Call", "OpenStackReplay"]

# Every service's root, as devstack lays them out behind one web server.
PREFIXES = {
    "identity": "identity",
    "compute": "compute",
    "volume": "volume",
    "networking": "network",
    "image": "image",
}

# The element name Nova and Cinder wrap an error in, by status.
_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    409: "conflictingRequest",
    413: "overLimit",
    503: "serviceUnavailable",
}
_NEUTRON_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    404: "HTTPNotFound",
    409: "HTTPConflict",
    500: "HTTPInternalServerError",
    503: "HTTPServiceUnavailable",
}
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class _Injected:
    method: str
    pattern: str
    status: int
    message: str
    times: int


class OpenStackReplay(
    KeystoneReplay, NovaVolumeAttachments, CinderReplay, NeutronSecurityGroups, GlanceReplay
):
    """A cloud with one project, one network, an image and a few flavors.

    `server_build_polls`: how many reads of a new server still answer BUILD;
    `server_outcome`: what it then becomes (ACTIVE or ERROR, with `server_fault`);
    `volume_outcome`: what a new volume becomes on its first read (available or error).
    """

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        *,
        username: str = "admin",
        password: str | None = None,
        project: str = "trove",
        network: str = "private",
        cidr: str = "10.0.0.0/24",
        image: str = "debian-12",
        keypairs: tuple[str, ...] = ("trove",),
    ) -> None:
        super().__init__(
            host,
            port,
            username=username,
            password=password or hex_id(),
            project=project,
            keypairs=keypairs,
        )
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._injected: list[_Injected] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._add_network(network, cidr)
        self._add_image(image)
        for flavor_id, name, vcpus, ram, disk in (
            ("1", "m1.tiny", 1, 512, 1),
            ("2", "m1.small", 1, 2048, 20),
            ("3", "m1.medium", 2, 4096, 40),
        ):
            self._add_flavor(flavor_id, name, vcpus, ram, disk)
        self._routes = self._build_routes()

    # The test's side.

    @property
    def auth_url(self) -> str:
        return f"{self.url}/identity/v3"

    def start(self) -> OpenStackReplay:
        replay = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, reply_headers, payload = replay.handle(
                    self.command, self.path, headers, raw
                )
                self.send_response(status, _REASONS.get(status))
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer((self.host, self.port), RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenStackReplay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def changes(self) -> list[Call]:
        """Every request that asked for a change (tokens aside), in order."""
        return [c for c in self.calls if c.method != "GET" and c.service != "identity"]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def fail_next(
        self, method: str, path: str, status: int = 500, message: str = "", times: int = 1
    ) -> None:
        """Answer the next `times` requests of `method` on `path` (below the service's
        root, `*` matching any run of characters) with `status`, changing nothing."""
        with self._lock:
            self._injected.append(
                _Injected(method, path, status, message or "injected failure", times)
            )

    def leftovers(self) -> dict[str, list[str]]:
        """The names of what was made and still exists (the preset cloud excluded)."""
        with self._lock:
            return {
                "servers": sorted(s["name"] for s in self.servers.values()),
                "volumes": sorted(str(v["name"]) for v in self.volumes.values()),
                "security_groups": sorted(g["name"] for g in self.security_groups.values()),
                "ports": sorted(p["id"] for p in self.ports.values()),
            }

    # The wire.

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """Record and answer one request (`headers` named in lower case)."""
        split = urlsplit(raw_path)
        segments = split.path.split("/", 2)
        service = PREFIXES.get(segments[1] if len(segments) > 1 else "", "")
        path = "/" + (segments[2] if len(segments) > 2 else "")
        query = parse_qs(split.query, keep_blank_values=True)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        with self._lock:
            self._calls.append(Call(method, service, path, query, body))
            try:
                reply = self._dispatch(method, service, path, query, body, headers)
            except ApiError as error:
                reply = Reply(error.status, self._error_body(service, error))
        return self._encode(service, reply)

    def _dispatch(
        self,
        method: str,
        service: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> Reply:
        if not service:
            raise ApiError(404, "The resource could not be found.")
        for injected in self._injected:
            if injected.method == method and fnmatch.fnmatchcase(path, injected.pattern):
                injected.times -= 1
                if injected.times <= 0:
                    self._injected.remove(injected)
                raise ApiError(injected.status, injected.message)
        routes = self._routes[service]
        allowed = False
        for route_method, pattern, needs_token, handler in routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            allowed = True
            if route_method != method:
                continue
            if needs_token and headers.get("x-auth-token") not in self._tokens:
                raise ApiError(401, "The request you have made requires authentication.")
            return handler(match, query, body)
        if allowed:
            raise ApiError(405, "The method is not allowed for the requested URL.")
        raise ApiError(404, "The resource could not be found.")

    def _encode(self, service: str, reply: Reply) -> tuple[int, dict[str, str], bytes]:
        headers = {"X-Openstack-Request-Id": f"req-{new_uuid()}", **reply.headers}
        if reply.body is None:
            return reply.status, headers, b""
        if isinstance(reply.body, str):
            headers.setdefault("Content-Type", "text/plain; charset=UTF-8")
            return reply.status, headers, reply.body.encode()
        headers.setdefault("Content-Type", "application/json")
        if service == "compute":
            headers["OpenStack-API-Version"] = f"compute {NOVA_MAX_VERSION}"
            headers["X-OpenStack-Nova-API-Version"] = NOVA_MAX_VERSION
        elif service == "volume":
            headers["OpenStack-API-Version"] = f"volume {CINDER_MAX_VERSION}"
        return reply.status, headers, json.dumps(reply.body).encode()

    def _error_body(self, service: str, error: ApiError) -> Any:
        if service == "identity":
            title = _REASONS.get(error.status, "Error")
            return {"error": {"code": error.status, "message": error.message, "title": title}}
        if service == "network":
            kind = error.kind or _NEUTRON_TYPES.get(error.status, "HTTPError")
            return {"NeutronError": {"type": kind, "message": error.message, "detail": ""}}
        if service == "image" or not service:
            reason = _REASONS.get(error.status, "Error")
            return f"{error.status} {reason}\n\n{error.message}\n\n   "
        name = _FAULT_NAMES.get(error.status, "computeFault")
        return {name: {"code": error.status, "message": error.message}}

    def _build_routes(self) -> dict[str, list[tuple[str, re.Pattern[str], bool, Handler]]]:
        """Per service: (method, path pattern, needs a token, handler), first match wins."""
        table = {
            "identity": self._keystone_routes(),
            "compute": [*self._nova_routes(), *self._nova_attachment_routes()],
            "volume": self._cinder_routes(),
            "network": [*self._neutron_routes(), *self._neutron_security_group_routes()],
            "image": self._glance_routes(),
        }
        return {
            service: [(m, re.compile(p), auth, h) for m, p, auth, h in routes]
            for service, routes in table.items()
        }
