"""Neutron for the OpenStack replay: its discovery documents, the network and its ports.

The replay has one network with one subnet; a port is made for each server that boots.
Security groups are in tests/openstack_replay_security_groups.py.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

from tests.openstack_replay_base import (
    UID,
    ApiError,
    Json,
    ReplayState,
    Reply,
    Route,
    new_uuid,
    timestamp,
)


class NeutronReplay(ReplayState):
    """Answers below /networking, security groups aside."""

    def _neutron_routes(self) -> list[Route]:
        return [
            ("GET", r"/?", False, self._neutron_versions),
            ("GET", r"/v2\.0/?", False, self._neutron_resources),
            ("GET", r"/v2\.0/extensions", True, self._neutron_extensions),
            ("GET", r"/v2\.0/networks", True, self._neutron_networks),
            ("GET", rf"/v2\.0/networks/{UID}", True, self._neutron_network),
            ("GET", r"/v2\.0/subnets", True, self._neutron_subnets),
            ("GET", rf"/v2\.0/subnets/{UID}", True, self._neutron_subnet),
            ("GET", r"/v2\.0/ports", True, self._neutron_ports),
            ("GET", rf"/v2\.0/ports/{UID}", True, self._neutron_port),
            ("GET", r"/v2\.0/floatingips", True, self._neutron_floating_ips),
        ]

    def _neutron_versions(self, *_: Any) -> Reply:
        version = {
            "status": "CURRENT",
            "id": "v2.0",
            "links": [{"href": f"{self.url}/networking/v2.0/", "rel": "self"}],
        }
        return Reply(200, {"versions": [version]})

    def _neutron_resources(self, *_: Any) -> Reply:
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
        return Reply(200, {"resources": resources})

    def _neutron_extensions(self, *_: Any) -> Reply:
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
        return Reply(200, {"extensions": extensions})

    def _common(self) -> Json:
        now = timestamp()
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
        network_id, subnet_id = new_uuid(), new_uuid()
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
        port_id = new_uuid()
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

    def _one(self, collection: dict[str, Json], item_id: str, kind: str, label: str) -> Json:
        item = collection.get(item_id)
        if item is None:
            raise ApiError(404, f"{label} {item_id} could not be found.", kind)
        return item

    def _neutron_networks(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> Reply:
        found = self._listed(self.networks, query, ("id", "name", "router:external", "shared"))
        return Reply(200, {"networks": found})

    def _neutron_network(self, match: re.Match[str], *_: Any) -> Reply:
        network = self._one(self.networks, match["id"], "NetworkNotFound", "Network")
        return Reply(200, {"network": network})

    def _neutron_subnets(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> Reply:
        return Reply(200, {"subnets": self._listed(self.subnets, query, ("id", "name"))})

    def _neutron_subnet(self, match: re.Match[str], *_: Any) -> Reply:
        subnet = self._one(self.subnets, match["id"], "SubnetNotFound", "Subnet")
        return Reply(200, {"subnet": subnet})

    def _neutron_ports(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> Reply:
        found = self._listed(self.ports, query, ("id", "device_id", "network_id", "name"))
        return Reply(200, {"ports": found})

    def _neutron_port(self, match: re.Match[str], *_: Any) -> Reply:
        return Reply(200, {"port": self._one(self.ports, match["id"], "PortNotFound", "Port")})

    def _neutron_floating_ips(self, *_: Any) -> Reply:
        return Reply(200, {"floatingips": []})
