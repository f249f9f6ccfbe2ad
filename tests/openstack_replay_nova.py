"""Nova for the OpenStack replay: version documents, flavors and servers.

A new server answers BUILD for `server_build_polls` reads, then becomes `server_outcome`;
on becoming ACTIVE it gets a Neutron port on its network, hence the base class.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any

from tests.openstack_replay_base import (
    UID,
    ApiError,
    Json,
    Reply,
    Route,
    hex_id,
    new_uuid,
    timestamp,
)
from tests.openstack_replay_neutron import NeutronReplay

NOVA_MAX_VERSION = "2.100"
FLAVORS = r"/v2\.1/flavors"
SERVERS = r"/v2\.1/servers"


class NovaReplay(NeutronReplay):
    """Answers below /compute, volume attachments aside."""

    def _nova_routes(self) -> list[Route]:
        return [
            ("GET", r"/?", False, self._nova_versions),
            ("GET", r"/v2\.1/?", False, self._nova_version),
            ("GET", FLAVORS, True, self._nova_flavors),
            ("GET", rf"{FLAVORS}/detail", True, self._nova_flavors_detail),
            ("GET", rf"{FLAVORS}/{UID}", True, self._nova_flavor),
            ("GET", rf"{FLAVORS}/{UID}/os-extra_specs", True, self._nova_extra_specs),
            ("GET", SERVERS, True, self._nova_servers),
            ("GET", rf"{SERVERS}/detail", True, self._nova_servers_detail),
            ("POST", SERVERS, True, self._nova_create_server),
            ("GET", rf"{SERVERS}/{UID}", True, self._nova_server),
            ("DELETE", rf"{SERVERS}/{UID}", True, self._nova_delete_server),
            ("GET", rf"{SERVERS}/{UID}/os-security-groups", True, self._nova_server_groups),
        ]

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

    def _nova_versions(self, *_: Any) -> Reply:
        versions = [self._nova_version_doc("v2.0"), self._nova_version_doc("v2.1")]
        return Reply(200, {"versions": versions})

    def _nova_version(self, *_: Any) -> Reply:
        version = self._nova_version_doc("v2.1")
        version["media-types"] = [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ]
        return Reply(200, {"version": version})

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

    def _nova_flavors(self, *_: Any) -> Reply:
        brief = [
            {"id": f["id"], "name": f["name"], "links": f["links"], "description": None}
            for f in self.flavors.values()
        ]
        return Reply(200, {"flavors": brief})

    def _nova_flavors_detail(self, *_: Any) -> Reply:
        return Reply(200, {"flavors": list(self.flavors.values())})

    def _nova_flavor(self, match: re.Match[str], *_: Any) -> Reply:
        return Reply(200, {"flavor": self._flavor(match["id"])})

    def _nova_extra_specs(self, match: re.Match[str], *_: Any) -> Reply:
        return Reply(200, {"extra_specs": self._flavor(match["id"])["extra_specs"]})

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
        server["updated"] = timestamp()
        if self.server_outcome == "ERROR":
            server.update(
                {
                    "status": "ERROR",
                    "OS-EXT-STS:vm_state": "error",
                    "OS-EXT-STS:task_state": None,
                    "fault": {"code": 500, "created": timestamp(), "message": self.server_fault},
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

    def _nova_servers(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> Reply:
        brief = [
            {"id": s["id"], "name": s["name"], "links": s["links"]}
            for s in self._nova_servers_matching(query)
        ]
        return Reply(200, {"servers": brief})

    def _nova_servers_detail(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> Reply:
        for server in self._nova_servers_matching(query):
            self._advance(server)
        servers = [self._server_view(s) for s in self._nova_servers_matching(query)]
        return Reply(200, {"servers": servers})

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

    def _nova_create_server(self, _: re.Match[str], __: Any, body: Any) -> Reply:
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
        server_id = new_uuid()
        self.created["servers"].append(server_id)
        now = timestamp()
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
                "adminPass": hex_id()[:12],
                "id": server_id,
                "links": self._links("servers", server_id),
                "security_groups": [{"name": g["name"]} for g in groups],
            }
        }
        return Reply(202, created, {"Location": f"{self.url}/compute/v2.1/servers/{server_id}"})

    def _nova_server(self, match: re.Match[str], *_: Any) -> Reply:
        server = self._stored_server(match["id"])
        self._advance(server)
        return Reply(200, {"server": self._server_view(server)})

    def _nova_delete_server(self, match: re.Match[str], *_: Any) -> Reply:
        server = self._stored_server(match["id"])
        for attached in server["os-extended-volumes:volumes_attached"]:
            volume = self.volumes.get(attached["id"])
            if volume is not None:
                volume.update({"status": "available", "attachments": [], "updated_at": timestamp()})
        for port_id in [p["id"] for p in self.ports.values() if p["device_id"] == server["id"]]:
            del self.ports[port_id]
        del self.servers[server["id"]]
        self._server_polls.pop(server["id"], None)
        return Reply(204)

    def _nova_server_groups(self, match: re.Match[str], *_: Any) -> Reply:
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
        return Reply(200, {"security_groups": groups})
