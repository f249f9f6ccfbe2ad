"""A replay of the OpenStack APIs the compute_openstack role drives, for tests.

One threaded HTTP server on loopback answers as Keystone v3, Nova, Cinder v3, Neutron and
Glance, laid out under one port as devstack serves them (/identity, /compute/v2.1,
/volume/v3/<project>, /networking, /image). Bodies follow the services' own shapes; every
request is recorded, failures can be injected, and what is left behind can be listed.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Json = dict[str, Any]

NOVA_MAX_VERSION = "2.100"
CINDER_MAX_VERSION = "3.71"
REGION = "RegionOne"

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
_RULE_NOT_FOUND = ("SecurityGroupRuleNotFound", "Security group rule")
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class Call:
    """One request as the replay received it; `path` is below the service's root."""

    method: str
    service: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class _Injected:
    method: str
    pattern: str
    status: int
    message: str
    times: int


class ApiError(Exception):
    """An answer other than success, in the answering service's own error shape."""

    def __init__(self, status: int, message: str, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[re.Match[str], dict[str, list[str]], Any], _Reply]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hex() -> str:
    return uuid.uuid4().hex


def _uuid() -> str:
    return str(uuid.uuid4())


def _matches(item: Json, query: dict[str, list[str]], fields: tuple[str, ...]) -> bool:
    """Neutron's and Cinder's list filters: a field equals one of the values asked for."""
    for name in fields:
        wanted = query.get(name)
        if wanted is None:
            continue
        value = item.get(name)
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        if text not in wanted:
            return False
    return True


class OpenStackReplay:
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
        self.host = host
        self.port = port
        self.username = username
        self.password = password or _hex()
        self.project_name = project
        self.project_id = _hex()
        self.user_id = _hex()
        self.server_build_polls = 1
        self.server_outcome = "ACTIVE"
        self.server_fault = "No valid host was found. There are not enough hosts available."
        self.volume_outcome = "available"
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._injected: list[_Injected] = []
        self._tokens: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.servers: dict[str, Json] = {}
        self.volumes: dict[str, Json] = {}
        self.security_groups: dict[str, Json] = {}
        self.security_group_rules: dict[str, Json] = {}
        self.ports: dict[str, Json] = {}
        self.keypairs = set(keypairs)
        # Ids of everything ever made through the API, in order, whether it still exists.
        self.created: dict[str, list[str]] = {"servers": [], "volumes": [], "security_groups": []}
        self._server_polls: dict[str, int] = {}
        self.networks: dict[str, Json] = {}
        self.subnets: dict[str, Json] = {}
        self._addresses: Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address] = iter(())
        self._add_network(network, cidr)
        self.images: dict[str, Json] = {}
        self._add_image(image)
        self.flavors: dict[str, Json] = {}
        for flavor_id, name, vcpus, ram, disk in (
            ("1", "m1.tiny", 1, 512, 1),
            ("2", "m1.small", 1, 2048, 20),
            ("3", "m1.medium", 2, 4096, 40),
        ):
            self._add_flavor(flavor_id, name, vcpus, ram, disk)
        self._routes = self._build_routes()

    # The test's side.

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

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
                reply = _Reply(error.status, self._error_body(service, error))
        return self._encode(service, reply)

    def _dispatch(
        self,
        method: str,
        service: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        headers: dict[str, str],
    ) -> _Reply:
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

    def _encode(self, service: str, reply: _Reply) -> tuple[int, dict[str, str], bytes]:
        headers = {"X-Openstack-Request-Id": f"req-{_uuid()}", **reply.headers}
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
        uid = r"(?P<id>[^/]+)"
        volumes = r"/v3/(?P<project>[^/]+)/volumes"
        flavors, servers = r"/v2\.1/flavors", r"/v2\.1/servers"
        attachments = rf"{servers}/{uid}/os-volume_attachments"
        groups, rules = r"/v2\.0/security-groups", r"/v2\.0/security-group-rules"
        table: dict[str, list[tuple[str, str, bool, Handler]]] = {
            "identity": [
                ("GET", r"/?", False, self._keystone_versions),
                ("GET", r"/v3/?", False, self._keystone_version),
                ("POST", r"/v3/auth/tokens", False, self._keystone_issue_token),
            ],
            "compute": [
                ("GET", r"/?", False, self._nova_versions),
                ("GET", r"/v2\.1/?", False, self._nova_version),
                ("GET", flavors, True, self._nova_flavors),
                ("GET", rf"{flavors}/detail", True, self._nova_flavors_detail),
                ("GET", rf"{flavors}/{uid}", True, self._nova_flavor),
                ("GET", rf"{flavors}/{uid}/os-extra_specs", True, self._nova_extra_specs),
                ("GET", servers, True, self._nova_servers),
                ("GET", rf"{servers}/detail", True, self._nova_servers_detail),
                ("POST", servers, True, self._nova_create_server),
                ("GET", rf"{servers}/{uid}", True, self._nova_server),
                ("DELETE", rf"{servers}/{uid}", True, self._nova_delete_server),
                ("GET", rf"{servers}/{uid}/os-security-groups", True, self._nova_server_groups),
                ("GET", attachments, True, self._nova_attachments),
                ("POST", attachments, True, self._nova_attach),
                ("GET", rf"{attachments}/(?P<volume>[^/]+)", True, self._nova_attachment),
                ("DELETE", rf"{attachments}/(?P<volume>[^/]+)", True, self._nova_detach),
            ],
            "volume": [
                ("GET", r"/?", False, self._cinder_versions),
                ("GET", r"/v3/?", False, self._cinder_versions),
                ("GET", volumes, True, self._cinder_volumes),
                ("GET", rf"{volumes}/detail", True, self._cinder_volumes_detail),
                ("POST", volumes, True, self._cinder_create_volume),
                ("GET", rf"{volumes}/{uid}", True, self._cinder_volume),
                ("DELETE", rf"{volumes}/{uid}", True, self._cinder_delete_volume),
            ],
            "network": [
                ("GET", r"/?", False, self._neutron_versions),
                ("GET", r"/v2\.0/?", False, self._neutron_resources),
                ("GET", r"/v2\.0/extensions", True, self._neutron_extensions),
                ("GET", r"/v2\.0/networks", True, self._neutron_networks),
                ("GET", rf"/v2\.0/networks/{uid}", True, self._neutron_network),
                ("GET", r"/v2\.0/subnets", True, self._neutron_subnets),
                ("GET", rf"/v2\.0/subnets/{uid}", True, self._neutron_subnet),
                ("GET", r"/v2\.0/ports", True, self._neutron_ports),
                ("GET", rf"/v2\.0/ports/{uid}", True, self._neutron_port),
                ("GET", r"/v2\.0/floatingips", True, self._neutron_floating_ips),
                ("GET", groups, True, self._neutron_security_groups),
                ("POST", groups, True, self._neutron_create_security_group),
                ("GET", rf"{groups}/{uid}", True, self._neutron_security_group),
                ("DELETE", rf"{groups}/{uid}", True, self._neutron_delete_security_group),
                ("GET", rules, True, self._neutron_rules),
                ("POST", rules, True, self._neutron_create_rules),
                ("GET", rf"{rules}/{uid}", True, self._neutron_rule),
                ("DELETE", rf"{rules}/{uid}", True, self._neutron_delete_rule),
            ],
            "image": [
                ("GET", r"/?", False, self._glance_versions),
                ("GET", r"/v2/images", True, self._glance_images),
                ("GET", rf"/v2/images/{uid}", True, self._glance_image),
            ],
        }
        return {
            service: [(m, re.compile(p), auth, h) for m, p, auth, h in routes]
            for service, routes in table.items()
        }

    # Keystone.

    def _catalog(self) -> list[Json]:
        def entry(kind: str, name: str, url: str) -> Json:
            return {
                "endpoints": [
                    {
                        "id": _hex(),
                        "interface": interface,
                        "region": REGION,
                        "region_id": REGION,
                        "url": url,
                    }
                    for interface in ("public", "internal", "admin")
                ],
                "id": _hex(),
                "type": kind,
                "name": name,
            }

        volume = f"{self.url}/volume/v3/{self.project_id}"
        return [
            entry("identity", "keystone", f"{self.url}/identity"),
            entry("compute", "nova", f"{self.url}/compute/v2.1"),
            entry("volumev3", "cinderv3", volume),
            entry("block-storage", "cinder", volume),
            entry("network", "neutron", f"{self.url}/networking"),
            entry("image", "glance", f"{self.url}/image"),
        ]

    def _identity_version(self) -> Json:
        return {
            "id": "v3.14",
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [{"rel": "self", "href": f"{self.url}/identity/v3/"}],
            "media-types": [
                {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
            ],
        }

    def _keystone_versions(self, *_: Any) -> _Reply:
        return _Reply(300, {"versions": {"values": [self._identity_version()]}})

    def _keystone_version(self, *_: Any) -> _Reply:
        return _Reply(200, {"version": self._identity_version()})

    def _keystone_issue_token(self, _: re.Match[str], __: Any, body: Any) -> _Reply:
        identity = ((body or {}).get("auth") or {}).get("identity") or {}
        user = (identity.get("password") or {}).get("user") or {}
        if user.get("name") != self.username or user.get("password") != self.password:
            raise ApiError(401, "The request you have made requires authentication.")
        token = f"gAAAAA{_hex()}{_hex()}"
        self._tokens.add(token)
        now = datetime.now(UTC)
        domain = {"id": "default", "name": "Default"}
        issued = {
            "token": {
                "methods": ["password"],
                "user": {
                    "domain": domain,
                    "id": self.user_id,
                    "name": self.username,
                    "password_expires_at": None,
                },
                "audit_ids": [_hex()[:22]],
                "expires_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "project": {"domain": domain, "id": self.project_id, "name": self.project_name},
                "is_domain": False,
                "roles": [
                    {"id": _hex(), "name": "member"},
                    {"id": _hex(), "name": "reader"},
                ],
                "catalog": self._catalog(),
            }
        }
        return _Reply(201, issued, {"X-Subject-Token": token})

    # Nova.

    def _nova_version_doc(self, version_id: str) -> Json:
        current = version_id == "v2.1"
        return {
            "id": version_id,
            "links": [{"href": f"{self.url}/compute/{version_id[:4]}/", "rel": "self"}],
            "status": "CURRENT" if current else "SUPPORTED",
            "version": NOVA_MAX_VERSION if current else "",
            "min_version": "2.1" if current else "",
            "updated": "2013-07-23T11:33:21Z" if current else "2011-01-21T11:33:21Z",
        }

    def _nova_versions(self, *_: Any) -> _Reply:
        versions = [self._nova_version_doc("v2.0"), self._nova_version_doc("v2.1")]
        return _Reply(200, {"versions": versions})

    def _nova_version(self, *_: Any) -> _Reply:
        version = self._nova_version_doc("v2.1")
        version["media-types"] = [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ]
        return _Reply(200, {"version": version})

    def _links(self, collection: str, item_id: str) -> list[Json]:
        return [
            {"href": f"{self.url}/compute/v2.1/{collection}/{item_id}", "rel": "self"},
            {"href": f"{self.url}/compute/{collection}/{item_id}", "rel": "bookmark"},
        ]

    def _add_flavor(self, flavor_id: str, name: str, vcpus: int, ram: int, disk: int) -> None:
        self.flavors[flavor_id] = {
            "OS-FLV-DISABLED:disabled": False,
            "disk": disk,
            "OS-FLV-EXT-DATA:ephemeral": 0,
            "os-flavor-access:is_public": True,
            "id": flavor_id,
            "links": self._links("flavors", flavor_id),
            "name": name,
            "ram": ram,
            "swap": 0,
            "vcpus": vcpus,
            "rxtx_factor": 1.0,
            "description": None,
            "extra_specs": {},
        }

    def _flavor(self, flavor_id: str) -> Json:
        flavor = self.flavors.get(flavor_id)
        if flavor is None:
            raise ApiError(404, f"Flavor {flavor_id} could not be found.")
        return flavor

    def _nova_flavors(self, *_: Any) -> _Reply:
        brief = [
            {"id": f["id"], "name": f["name"], "links": f["links"], "description": None}
            for f in self.flavors.values()
        ]
        return _Reply(200, {"flavors": brief})

    def _nova_flavors_detail(self, *_: Any) -> _Reply:
        return _Reply(200, {"flavors": list(self.flavors.values())})

    def _nova_flavor(self, match: re.Match[str], *_: Any) -> _Reply:
        return _Reply(200, {"flavor": self._flavor(match["id"])})

    def _nova_extra_specs(self, match: re.Match[str], *_: Any) -> _Reply:
        return _Reply(200, {"extra_specs": self._flavor(match["id"])["extra_specs"]})

    def _stored_server(self, server_id: str) -> Json:
        server = self.servers.get(server_id)
        if server is None:
            raise ApiError(404, f"Instance {server_id} could not be found.")
        return server

    def _advance(self, server: Json) -> None:
        """A read of a building server: it stays BUILD for a few reads, then boots."""
        if server["status"] != "BUILD":
            return
        polls = self._server_polls.get(server["id"], 0) + 1
        self._server_polls[server["id"]] = polls
        if polls <= self.server_build_polls:
            return
        server["updated"] = _now()
        if self.server_outcome == "ERROR":
            server.update(
                {
                    "status": "ERROR",
                    "OS-EXT-STS:vm_state": "error",
                    "OS-EXT-STS:task_state": None,
                    "fault": {"code": 500, "created": _now(), "message": self.server_fault},
                }
            )
            return
        port = self._add_port(server)
        network = self.networks[port["network_id"]]
        server.update(
            {
                "status": "ACTIVE",
                "OS-EXT-STS:vm_state": "active",
                "OS-EXT-STS:task_state": None,
                "OS-EXT-STS:power_state": 1,
                "OS-SRV-USG:launched_at": datetime.now(UTC).isoformat(timespec="microseconds")[:-6],
                "addresses": {
                    network["name"]: [
                        {
                            "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
                            "OS-EXT-IPS:type": "fixed",
                            "addr": fixed["ip_address"],
                            "version": ipaddress.ip_address(fixed["ip_address"]).version,
                        }
                        for fixed in port["fixed_ips"]
                    ]
                },
            }
        )

    def _server_view(self, server: Json) -> Json:
        view = {k: v for k, v in server.items() if not k.startswith("_")}
        if view["status"] != "ERROR":
            view.pop("fault", None)
        return view

    def _nova_servers_matching(self, query: dict[str, list[str]]) -> list[Json]:
        found = []
        for server in self.servers.values():
            # Nova matches a name filter as a regular expression.
            if "name" in query and not re.search(query["name"][0], server["name"]):
                continue
            if "status" in query and server["status"] not in query["status"]:
                continue
            found.append(server)
        return found

    def _nova_servers(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> _Reply:
        brief = [
            {"id": s["id"], "name": s["name"], "links": s["links"]}
            for s in self._nova_servers_matching(query)
        ]
        return _Reply(200, {"servers": brief})

    def _nova_servers_detail(
        self, _: re.Match[str], query: dict[str, list[str]], __: Any
    ) -> _Reply:
        for server in self._nova_servers_matching(query):
            self._advance(server)
        servers = [self._server_view(s) for s in self._nova_servers_matching(query)]
        return _Reply(200, {"servers": servers})

    def _find_security_group(self, name_or_id: str) -> Json:
        if name_or_id in self.security_groups:
            return self.security_groups[name_or_id]
        named = [g for g in self.security_groups.values() if g["name"] == name_or_id]
        if len(named) != 1:
            problem = "find" if not named else "pick one of several"
            raise ApiError(
                400, f"Unable to {problem} security_group with name or id '{name_or_id}'"
            )
        return named[0]

    def _nova_create_server(self, _: re.Match[str], __: Any, body: Any) -> _Reply:
        request = (body or {}).get("server")
        if not isinstance(request, dict) or not request.get("name"):
            raise ApiError(400, "Invalid input for field/attribute server.")
        flavor = self.flavors.get(str(request.get("flavorRef")))
        if flavor is None:
            raise ApiError(400, f"Flavor {request.get('flavorRef')} could not be found.")
        image = self.images.get(str(request.get("imageRef")))
        if image is None:
            raise ApiError(400, f"Image {request.get('imageRef')} could not be found.")
        networks = request.get("networks")
        if not isinstance(networks, list) or len(networks) != 1:
            raise ApiError(400, "The replay boots servers on exactly one network.")
        network_id = networks[0].get("uuid")
        if network_id not in self.networks:
            raise ApiError(400, f"Network {network_id} could not be found.")
        key_name = request.get("key_name")
        if key_name is not None and key_name not in self.keypairs:
            raise ApiError(400, "Invalid key_name provided.")
        groups = [
            self._find_security_group(g["name"])
            for g in request.get("security_groups") or [{"name": "default"}]
        ]
        server_id = _uuid()
        self.created["servers"].append(server_id)
        now = _now()
        self.servers[server_id] = {
            "accessIPv4": "",
            "accessIPv6": "",
            "addresses": {},
            "created": now,
            "description": None,
            "locked": False,
            "locked_reason": None,
            "flavor": {
                "disk": flavor["disk"],
                "ephemeral": 0,
                "extra_specs": {},
                "original_name": flavor["name"],
                "ram": flavor["ram"],
                "swap": 0,
                "vcpus": flavor["vcpus"],
            },
            "hostId": "",
            "id": server_id,
            "image": {
                "id": image["id"],
                "links": [{"href": f"{self.url}/compute/images/{image['id']}", "rel": "bookmark"}],
                "properties": {"base_image_ref": image["id"]},
            },
            "key_name": key_name,
            "links": self._links("servers", server_id),
            "metadata": request.get("metadata") or {},
            "name": request["name"],
            "config_drive": "",
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": "",
            "OS-EXT-SRV-ATTR:hostname": request["name"],
            "OS-EXT-STS:power_state": 0,
            "OS-EXT-STS:task_state": "scheduling",
            "OS-EXT-STS:vm_state": "building",
            "os-extended-volumes:volumes_attached": [],
            "OS-SRV-USG:launched_at": None,
            "OS-SRV-USG:terminated_at": None,
            "pinned_availability_zone": None,
            "progress": 0,
            "scheduler_hints": {},
            "security_groups": [{"name": g["name"]} for g in groups],
            "server_groups": [],
            "status": "BUILD",
            "tags": [],
            "tenant_id": self.project_id,
            "trusted_image_certificates": None,
            "updated": now,
            "user_id": self.user_id,
            "_network_id": network_id,
            "_security_group_ids": [g["id"] for g in groups],
        }
        created = {
            "server": {
                "OS-DCF:diskConfig": "MANUAL",
                "adminPass": _hex()[:12],
                "id": server_id,
                "links": self._links("servers", server_id),
                "security_groups": [{"name": g["name"]} for g in groups],
            }
        }
        return _Reply(202, created, {"Location": f"{self.url}/compute/v2.1/servers/{server_id}"})

    def _nova_server(self, match: re.Match[str], *_: Any) -> _Reply:
        server = self._stored_server(match["id"])
        self._advance(server)
        return _Reply(200, {"server": self._server_view(server)})

    def _nova_delete_server(self, match: re.Match[str], *_: Any) -> _Reply:
        server = self._stored_server(match["id"])
        for attached in server["os-extended-volumes:volumes_attached"]:
            volume = self.volumes.get(attached["id"])
            if volume is not None:
                volume.update({"status": "available", "attachments": [], "updated_at": _now()})
        for port_id in [p["id"] for p in self.ports.values() if p["device_id"] == server["id"]]:
            del self.ports[port_id]
        del self.servers[server["id"]]
        self._server_polls.pop(server["id"], None)
        return _Reply(204)

    def _nova_server_groups(self, match: re.Match[str], *_: Any) -> _Reply:
        server = self._stored_server(match["id"])
        groups = []
        for group_id in server["_security_group_ids"]:
            group = self.security_groups.get(group_id)
            if group is None:
                continue
            rules = [
                {
                    "from_port": r["port_range_min"],
                    "group": {},
                    "ip_protocol": r["protocol"],
                    "to_port": r["port_range_max"],
                    "parent_group_id": group["id"],
                    "ip_range": {"cidr": r["remote_ip_prefix"]} if r["remote_ip_prefix"] else {},
                    "id": r["id"],
                }
                for r in group["security_group_rules"]
                if r["direction"] == "ingress"
            ]
            groups.append(
                {
                    "description": group["description"],
                    "id": group["id"],
                    "name": group["name"],
                    "rules": rules,
                    "tenant_id": group["tenant_id"],
                }
            )
        return _Reply(200, {"security_groups": groups})

    def _attachment_view(self, server: Json, volume: Json) -> Json:
        device = next(a["device"] for a in volume["attachments"] if a["server_id"] == server["id"])
        attachment_id = next(
            a["attachment_id"] for a in volume["attachments"] if a["server_id"] == server["id"]
        )
        return {
            "attachment_id": attachment_id,
            "delete_on_termination": False,
            "device": device,
            "serverId": server["id"],
            "tag": None,
            "volumeId": volume["id"],
            "bdm_uuid": _uuid(),
        }

    def _attached(self, server: Json) -> list[Json]:
        return [
            self.volumes[a["id"]]
            for a in server["os-extended-volumes:volumes_attached"]
            if a["id"] in self.volumes
        ]

    def _nova_attachments(self, match: re.Match[str], *_: Any) -> _Reply:
        server = self._stored_server(match["id"])
        views = [self._attachment_view(server, v) for v in self._attached(server)]
        return _Reply(200, {"volumeAttachments": views})

    def _nova_attachment(self, match: re.Match[str], *_: Any) -> _Reply:
        server = self._stored_server(match["id"])
        for volume in self._attached(server):
            if volume["id"] == match["volume"]:
                return _Reply(200, {"volumeAttachment": self._attachment_view(server, volume)})
        raise ApiError(404, f"Volume {match['volume']} is not attached to {server['id']}")

    def _nova_attach(self, match: re.Match[str], _: Any, body: Any) -> _Reply:
        server = self._stored_server(match["id"])
        request = (body or {}).get("volumeAttachment") or {}
        volume = self.volumes.get(str(request.get("volumeId")))
        if volume is None:
            raise ApiError(404, f"Volume {request.get('volumeId')} could not be found.")
        if server["status"] not in ("ACTIVE", "SHUTOFF"):
            raise ApiError(
                409,
                f"Cannot 'attach_volume' instance {server['id']} while it is in vm_state "
                f"{server['OS-EXT-STS:vm_state']}",
            )
        if volume["status"] != "available":
            raise ApiError(
                400,
                f"Invalid volume: volume {volume['id']} status must be available, "
                f"but current status is: {volume['status']}",
            )
        taken = {a["device"] for v in self._attached(server) for a in v["attachments"]}
        device = request.get("device") or next(
            f"/dev/vd{letter}" for letter in "bcdefghijklmnop" if f"/dev/vd{letter}" not in taken
        )
        attachment_id = _uuid()
        volume.update(
            {
                "status": "in-use",
                "updated_at": _now(),
                "attachments": [
                    {
                        "id": volume["id"],
                        "attachment_id": attachment_id,
                        "volume_id": volume["id"],
                        "server_id": server["id"],
                        "host_name": None,
                        "device": device,
                        "attached_at": _now(),
                    }
                ],
            }
        )
        server["os-extended-volumes:volumes_attached"].append(
            {"id": volume["id"], "delete_on_termination": False}
        )
        attached = {
            "volumeAttachment": {
                "delete_on_termination": False,
                "device": device,
                "id": volume["id"],
                "serverId": server["id"],
                "tag": None,
                "volumeId": volume["id"],
            }
        }
        return _Reply(200, attached)

    def _nova_detach(self, match: re.Match[str], *_: Any) -> _Reply:
        server = self._stored_server(match["id"])
        for volume in self._attached(server):
            if volume["id"] == match["volume"]:
                volume.update({"status": "available", "attachments": [], "updated_at": _now()})
                server["os-extended-volumes:volumes_attached"] = [
                    a
                    for a in server["os-extended-volumes:volumes_attached"]
                    if a["id"] != volume["id"]
                ]
                return _Reply(202)
        raise ApiError(404, f"Volume {match['volume']} is not attached to {server['id']}")

    # Cinder.

    def _cinder_versions(self, *_: Any) -> _Reply:
        version = {
            "id": "v3.0",
            "status": "CURRENT",
            "version": CINDER_MAX_VERSION,
            "min_version": "3.0",
            "updated": "2023-08-31T00:00:00Z",
            "links": [
                {"href": "https://docs.openstack.org/", "type": "text/html", "rel": "describedby"},
                {"href": f"{self.url}/volume/v3/", "rel": "self"},
            ],
            "media-types": [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.volume+json;version=3",
                }
            ],
        }
        return _Reply(300, {"versions": [version]})

    def _own_project(self, match: re.Match[str]) -> None:
        if match["project"] != self.project_id:
            raise ApiError(403, "Policy doesn't allow this for another project.")

    def _volume_links(self, volume_id: str) -> list[Json]:
        return [
            {"href": f"{self.url}/volume/v3/{self.project_id}/volumes/{volume_id}", "rel": "self"},
            {"href": f"{self.url}/volume/{self.project_id}/volumes/{volume_id}", "rel": "bookmark"},
        ]

    def _stored_volume(self, volume_id: str) -> Json:
        volume = self.volumes.get(volume_id)
        if volume is None:
            raise ApiError(404, f"Volume {volume_id} could not be found.")
        return volume

    def _settle(self, volume: Json) -> Json:
        if volume["status"] == "creating":
            volume.update({"status": self.volume_outcome, "updated_at": _now()})
            if self.volume_outcome == "available":
                volume["os-vol-host-attr:host"] = "replay@lvmdriver-1#lvmdriver-1"
        return volume

    def _cinder_volumes_matching(self, query: dict[str, list[str]]) -> list[Json]:
        return [
            self._settle(v)
            for v in self.volumes.values()
            if _matches(v, query, ("name", "status", "id"))
        ]

    def _cinder_volumes(self, match: re.Match[str], query: dict[str, list[str]], _: Any) -> _Reply:
        self._own_project(match)
        brief = [
            {"id": v["id"], "links": v["links"], "name": v["name"]}
            for v in self._cinder_volumes_matching(query)
        ]
        return _Reply(200, {"volumes": brief})

    def _cinder_volumes_detail(
        self, match: re.Match[str], query: dict[str, list[str]], _: Any
    ) -> _Reply:
        self._own_project(match)
        return _Reply(200, {"volumes": self._cinder_volumes_matching(query)})

    def _cinder_create_volume(self, match: re.Match[str], _: Any, body: Any) -> _Reply:
        self._own_project(match)
        request = (body or {}).get("volume")
        if not isinstance(request, dict):
            raise ApiError(400, "Missing required element 'volume' in request body.")
        size = request.get("size")
        if not isinstance(size, int) or size < 1:
            raise ApiError(400, f"Invalid input for field/attribute size. Value: {size}.")
        volume_id = _uuid()
        self.created["volumes"].append(volume_id)
        self.volumes[volume_id] = {
            "attachments": [],
            "availability_zone": request.get("availability_zone") or "nova",
            "bootable": "false",
            "consistencygroup_id": None,
            "created_at": datetime.now(UTC).isoformat(timespec="microseconds")[:-6],
            "description": request.get("description"),
            "encrypted": False,
            "id": volume_id,
            "links": self._volume_links(volume_id),
            "metadata": request.get("metadata") or {},
            "migration_status": None,
            "multiattach": bool(request.get("multiattach", False)),
            "name": request.get("name"),
            "os-vol-host-attr:host": None,
            "os-vol-mig-status-attr:migstat": None,
            "os-vol-mig-status-attr:name_id": None,
            "os-vol-tenant-attr:tenant_id": self.project_id,
            "replication_status": None,
            "size": size,
            "snapshot_id": None,
            "source_volid": None,
            "status": "creating",
            "updated_at": None,
            "user_id": self.user_id,
            "volume_type": request.get("volume_type") or "__DEFAULT__",
            "provider_id": None,
            "group_id": None,
            "service_uuid": None,
            "shared_targets": None,
            "cluster_name": None,
            "volume_type_id": "5fed9d7c-401d-46e2-8e80-f30c70cb7e1d",
            "consumes_quota": True,
        }
        return _Reply(202, {"volume": dict(self.volumes[volume_id])})

    def _cinder_volume(self, match: re.Match[str], *_: Any) -> _Reply:
        self._own_project(match)
        return _Reply(200, {"volume": self._settle(self._stored_volume(match["id"]))})

    def _cinder_delete_volume(self, match: re.Match[str], *_: Any) -> _Reply:
        self._own_project(match)
        volume = self._settle(self._stored_volume(match["id"]))
        if volume["status"] not in ("available", "error") or volume["attachments"]:
            raise ApiError(
                400,
                "Invalid volume: Volume status must be available or error or error_restoring "
                "or error_extending or error_managing and must not be migrating, attached, "
                "belong to a group, have snapshots, awaiting a transfer, or be disassociated "
                "from snapshots after volume transfer.",
            )
        del self.volumes[volume["id"]]
        return _Reply(202)

    # Neutron.

    def _neutron_versions(self, *_: Any) -> _Reply:
        version = {
            "status": "CURRENT",
            "id": "v2.0",
            "links": [{"href": f"{self.url}/networking/v2.0/", "rel": "self"}],
        }
        return _Reply(200, {"versions": [version]})

    def _neutron_resources(self, *_: Any) -> _Reply:
        resources = [
            {
                "links": [{"href": f"{self.url}/networking/v2.0/{plural}", "rel": "self"}],
                "name": singular,
                "collection": plural,
            }
            for singular, plural in (
                ("subnet", "subnets"),
                ("network", "networks"),
                ("port", "ports"),
                ("security_group", "security-groups"),
                ("security_group_rule", "security-group-rules"),
            )
        ]
        return _Reply(200, {"resources": resources})

    def _neutron_extensions(self, *_: Any) -> _Reply:
        extensions = [
            {
                "alias": alias,
                "name": name,
                "description": name,
                "links": [],
                "updated": "2020-01-01T00:00:00-00:00",
            }
            for alias, name in (
                ("security-group", "security-group"),
                ("stateful-security-group", "Stateful security group"),
                ("standard-attr-revisions", "Resource revision numbers"),
                ("standard-attr-timestamp", "Resource timestamps"),
                ("standard-attr-description", "standard-attr-description"),
                ("project-id", "project_id field enabled"),
                ("port-security", "Port Security"),
                ("binding", "Port Binding"),
            )
        ]
        return _Reply(200, {"extensions": extensions})

    def _common(self) -> Json:
        now = _now()
        return {
            "project_id": self.project_id,
            "tenant_id": self.project_id,
            "created_at": now,
            "updated_at": now,
            "revision_number": 0,
            "tags": [],
            "description": "",
        }

    def _add_network(self, name: str, cidr: str) -> None:
        network_id, subnet_id = _uuid(), _uuid()
        net = ipaddress.ip_network(cidr)
        hosts = net.hosts()
        gateway = next(hosts)
        # The first addresses go to the router, DHCP and metadata ports.
        for _ in range(8):
            next(hosts)
        self._addresses = hosts
        self.subnets[subnet_id] = {
            **self._common(),
            "name": f"{name}-subnet",
            "enable_dhcp": True,
            "network_id": network_id,
            "segment_id": None,
            "dns_nameservers": [],
            "allocation_pools": [{"start": str(gateway + 1), "end": str(net[-2])}],
            "host_routes": [],
            "ip_version": net.version,
            "gateway_ip": str(gateway),
            "cidr": str(net),
            "id": subnet_id,
            "ipv6_address_mode": None,
            "ipv6_ra_mode": None,
            "service_types": [],
            "subnetpool_id": None,
            "dns_publish_fixed_ip": None,
        }
        self.networks[network_id] = {
            **self._common(),
            "admin_state_up": True,
            "availability_zone_hints": [],
            "availability_zones": ["nova"],
            "dns_domain": "",
            "id": network_id,
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "is_default": False,
            "l2_adjacency": True,
            "mtu": 1442,
            "name": name,
            "port_security_enabled": True,
            "qos_policy_id": None,
            "revision_number": 2,
            "router:external": False,
            "shared": False,
            "status": "ACTIVE",
            "subnets": [subnet_id],
        }

    def _add_port(self, server: Json) -> Json:
        network_id = server["_network_id"]
        subnet_id = self.networks[network_id]["subnets"][0]
        port_id = _uuid()
        mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3])
        self.ports[port_id] = {
            **self._common(),
            "admin_state_up": True,
            "allowed_address_pairs": [],
            "binding:vnic_type": "normal",
            "data_plane_status": None,
            "device_id": server["id"],
            "device_owner": "compute:nova",
            "extra_dhcp_opts": [],
            "fixed_ips": [{"ip_address": str(next(self._addresses)), "subnet_id": subnet_id}],
            "id": port_id,
            "ip_allocation": "immediate",
            "mac_address": mac,
            "name": "",
            "network_id": network_id,
            "port_security_enabled": True,
            "revision_number": 4,
            "security_groups": list(server["_security_group_ids"]),
            "status": "ACTIVE",
        }
        return self.ports[port_id]

    def _listed(
        self, collection: dict[str, Json], query: dict[str, list[str]], fields: tuple[str, ...]
    ) -> list[Json]:
        return [item for item in collection.values() if _matches(item, query, fields)]

    def _one(self, collection: dict[str, Json], item_id: str, kind: str, label: str) -> Json:
        item = collection.get(item_id)
        if item is None:
            raise ApiError(404, f"{label} {item_id} could not be found.", kind)
        return item

    def _neutron_networks(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> _Reply:
        found = self._listed(self.networks, query, ("id", "name", "router:external", "shared"))
        return _Reply(200, {"networks": found})

    def _neutron_network(self, match: re.Match[str], *_: Any) -> _Reply:
        network = self._one(self.networks, match["id"], "NetworkNotFound", "Network")
        return _Reply(200, {"network": network})

    def _neutron_subnets(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> _Reply:
        return _Reply(200, {"subnets": self._listed(self.subnets, query, ("id", "name"))})

    def _neutron_subnet(self, match: re.Match[str], *_: Any) -> _Reply:
        subnet = self._one(self.subnets, match["id"], "SubnetNotFound", "Subnet")
        return _Reply(200, {"subnet": subnet})

    def _neutron_ports(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> _Reply:
        found = self._listed(self.ports, query, ("id", "device_id", "network_id", "name"))
        return _Reply(200, {"ports": found})

    def _neutron_port(self, match: re.Match[str], *_: Any) -> _Reply:
        return _Reply(200, {"port": self._one(self.ports, match["id"], "PortNotFound", "Port")})

    def _neutron_floating_ips(self, *_: Any) -> _Reply:
        return _Reply(200, {"floatingips": []})

    def _neutron_security_groups(
        self, _: re.Match[str], query: dict[str, list[str]], __: Any
    ) -> _Reply:
        found = self._listed(self.security_groups, query, ("id", "name", "project_id"))
        return _Reply(200, {"security_groups": found})

    def _neutron_security_group(self, match: re.Match[str], *_: Any) -> _Reply:
        group = self._one(
            self.security_groups, match["id"], "SecurityGroupNotFound", "Security group"
        )
        return _Reply(200, {"security_group": group})

    def _new_rule(self, request: Json) -> Json:
        group_id = request.get("security_group_id")
        group = self.security_groups.get(str(group_id))
        if group is None:
            raise ApiError(
                404, f"Security group {group_id} does not exist", "SecurityGroupNotFound"
            )
        direction = request.get("direction")
        if direction not in ("ingress", "egress"):
            reason = f"'{direction}' is not in ['ingress', 'egress']."
            raise ApiError(400, f"Invalid input for direction. Reason: {reason}")
        ethertype = request.get("ethertype", "IPv4")
        prefix = request.get("remote_ip_prefix")
        if prefix is not None:
            network = ipaddress.ip_network(prefix, strict=False)
            if f"IPv{network.version}" != ethertype:
                raise ApiError(
                    400,
                    f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                    "SecurityGroupRuleParameterConflict",
                )
            prefix = str(network)
        low, high = request.get("port_range_min"), request.get("port_range_max")
        if low is not None and high is not None and low > high:
            raise ApiError(
                400,
                "For TCP/UDP protocols, port_range_min must be <= port_range_max",
                "SecurityGroupInvalidPortRange",
            )
        rule = {
            **self._common(),
            "id": _uuid(),
            "direction": direction,
            "ethertype": ethertype,
            "port_range_max": high,
            "port_range_min": low,
            "protocol": request.get("protocol"),
            "remote_group_id": request.get("remote_group_id"),
            "remote_ip_prefix": prefix,
            "remote_address_group_id": None,
            "normalized_cidr": prefix,
            "security_group_id": group["id"],
            "description": request.get("description") or "",
            "belongs_to_default_sg": False,
        }
        same = ("direction", "ethertype", "port_range_max", "port_range_min", "protocol")
        for existing in group["security_group_rules"]:
            if all(existing[k] == rule[k] for k in (*same, "remote_ip_prefix", "remote_group_id")):
                raise ApiError(
                    409,
                    f"Security group rule already exists. Rule id is {existing['id']}.",
                    "SecurityGroupRuleExists",
                )
        return rule

    def _add_rule(self, rule: Json) -> None:
        group = self.security_groups[rule["security_group_id"]]
        group["security_group_rules"].append(rule)
        group["revision_number"] += 1
        group["updated_at"] = _now()
        self.security_group_rules[rule["id"]] = rule

    def _neutron_create_security_group(self, _: re.Match[str], __: Any, body: Any) -> _Reply:
        request = (body or {}).get("security_group")
        if not isinstance(request, dict):
            raise ApiError(400, "Resource body required")
        group_id = _uuid()
        self.created["security_groups"].append(group_id)
        group = {
            **self._common(),
            "id": group_id,
            "name": request.get("name") or "",
            "description": request.get("description") or "",
            "security_group_rules": [],
            "stateful": request.get("stateful", True),
            "shared": False,
            "revision_number": 0,
        }
        self.security_groups[group_id] = group
        # Neutron gives every new group its egress rules.
        for ethertype in ("IPv4", "IPv6"):
            self._add_rule(
                self._new_rule(
                    {"security_group_id": group_id, "direction": "egress", "ethertype": ethertype}
                )
            )
        return _Reply(201, {"security_group": group})

    def _neutron_delete_security_group(self, match: re.Match[str], *_: Any) -> _Reply:
        group = self._one(
            self.security_groups, match["id"], "SecurityGroupNotFound", "Security group"
        )
        if any(group["id"] in p["security_groups"] for p in self.ports.values()):
            raise ApiError(409, f"Security Group {group['id']} in use.", "SecurityGroupInUse")
        for rule in group["security_group_rules"]:
            self.security_group_rules.pop(rule["id"], None)
        del self.security_groups[group["id"]]
        return _Reply(204)

    def _neutron_rules(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> _Reply:
        fields = ("id", "security_group_id", "direction", "ethertype", "protocol")
        found = self._listed(self.security_group_rules, query, fields)
        return _Reply(200, {"security_group_rules": found})

    def _neutron_rule(self, match: re.Match[str], *_: Any) -> _Reply:
        rule = self._one(self.security_group_rules, match["id"], *_RULE_NOT_FOUND)
        return _Reply(200, {"security_group_rule": rule})

    def _neutron_create_rules(self, _: re.Match[str], __: Any, body: Any) -> _Reply:
        body = body or {}
        if "security_group_rules" in body:
            # A bulk create is all or nothing.
            rules = [self._new_rule(r) for r in body["security_group_rules"]]
            for rule in rules:
                self._add_rule(rule)
            return _Reply(201, {"security_group_rules": rules})
        rule = self._new_rule(body.get("security_group_rule") or {})
        self._add_rule(rule)
        return _Reply(201, {"security_group_rule": rule})

    def _neutron_delete_rule(self, match: re.Match[str], *_: Any) -> _Reply:
        rule = self._one(self.security_group_rules, match["id"], *_RULE_NOT_FOUND)
        group = self.security_groups[rule["security_group_id"]]
        group["security_group_rules"] = [
            r for r in group["security_group_rules"] if r["id"] != rule["id"]
        ]
        group["revision_number"] += 1
        del self.security_group_rules[rule["id"]]
        return _Reply(204)

    # Glance.

    def _add_image(self, name: str) -> None:
        image_id = _uuid()
        now = _now()
        self.images[image_id] = {
            "status": "active",
            "name": name,
            "tags": [],
            "container_format": "bare",
            "created_at": now,
            "disk_format": "qcow2",
            "updated_at": now,
            "visibility": "public",
            "self": f"/v2/images/{image_id}",
            "min_disk": 0,
            "protected": False,
            "id": image_id,
            "file": f"/v2/images/{image_id}/file",
            "checksum": _hex(),
            "os_hash_algo": "sha512",
            "os_hash_value": _hex() * 4,
            "os_hidden": False,
            "owner": _hex(),
            "size": 343_932_928,
            "min_ram": 0,
            "schema": "/v2/schemas/image",
            "virtual_size": 2_147_483_648,
        }

    def _glance_versions(self, *_: Any) -> _Reply:
        versions = [
            {
                "id": f"v2.{minor}",
                "status": "CURRENT" if minor == 17 else "SUPPORTED",
                "links": [{"rel": "self", "href": f"{self.url}/image/v2/"}],
            }
            for minor in range(17, -1, -1)
        ]
        return _Reply(300, {"versions": versions})

    def _glance_images(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> _Reply:
        found = self._listed(self.images, query, ("id", "name", "status", "visibility"))
        link = "/v2/images" + (f"?name={query['name'][0]}" if "name" in query else "")
        return _Reply(200, {"images": found, "schema": "/v2/schemas/images", "first": link})

    def _glance_image(self, match: re.Match[str], *_: Any) -> _Reply:
        image = self.images.get(match["id"])
        if image is None:
            raise ApiError(404, f"No image found with ID {match['id']}")
        return _Reply(200, image)
