"""Neutron's security groups and their rules for the OpenStack replay.

Rules are checked as Neutron checks them (direction, ethertype against the prefix, port
range, duplicates); a bulk create is all or nothing, and a group a port uses stays.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from tests.openstack_replay_base import UID, ApiError, Json, Reply, Route, new_uuid, timestamp
from tests.openstack_replay_neutron import NeutronReplay

GROUPS = r"/v2\.0/security-groups"
RULES = r"/v2\.0/security-group-rules"
_RULE_NOT_FOUND = ("SecurityGroupRuleNotFound", "Security group rule")


class NeutronSecurityGroups(NeutronReplay):
    """Answers below /networking/v2.0/security-groups and .../security-group-rules."""

    def _neutron_security_group_routes(self) -> list[Route]:
        return [
            ("GET", GROUPS, True, self._neutron_security_groups),
            ("POST", GROUPS, True, self._neutron_create_security_group),
            ("GET", rf"{GROUPS}/{UID}", True, self._neutron_security_group),
            ("DELETE", rf"{GROUPS}/{UID}", True, self._neutron_delete_security_group),
            ("GET", RULES, True, self._neutron_rules),
            ("POST", RULES, True, self._neutron_create_rules),
            ("GET", rf"{RULES}/{UID}", True, self._neutron_rule),
            ("DELETE", rf"{RULES}/{UID}", True, self._neutron_delete_rule),
        ]

    def _neutron_security_groups(
        self, _: re.Match[str], query: dict[str, list[str]], __: Any
    ) -> Reply:
        found = self._listed(self.security_groups, query, ("id", "name", "project_id"))
        return Reply(200, {"security_groups": found})

    def _neutron_security_group(self, match: re.Match[str], *_: Any) -> Reply:
        group = self._one(
            self.security_groups, match["id"], "SecurityGroupNotFound", "Security group"
        )
        return Reply(200, {"security_group": group})

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
            "id": new_uuid(),
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
        group["updated_at"] = timestamp()
        self.security_group_rules[rule["id"]] = rule

    def _neutron_create_security_group(self, _: re.Match[str], __: Any, body: Any) -> Reply:
        request = (body or {}).get("security_group")
        if not isinstance(request, dict):
            raise ApiError(400, "Resource body required")
        group_id = new_uuid()
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
        return Reply(201, {"security_group": group})

    def _neutron_delete_security_group(self, match: re.Match[str], *_: Any) -> Reply:
        group = self._one(
            self.security_groups, match["id"], "SecurityGroupNotFound", "Security group"
        )
        if any(group["id"] in p["security_groups"] for p in self.ports.values()):
            raise ApiError(409, f"Security Group {group['id']} in use.", "SecurityGroupInUse")
        for rule in group["security_group_rules"]:
            self.security_group_rules.pop(rule["id"], None)
        del self.security_groups[group["id"]]
        return Reply(204)

    def _neutron_rules(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> Reply:
        fields = ("id", "security_group_id", "direction", "ethertype", "protocol")
        found = self._listed(self.security_group_rules, query, fields)
        return Reply(200, {"security_group_rules": found})

    def _neutron_rule(self, match: re.Match[str], *_: Any) -> Reply:
        rule = self._one(self.security_group_rules, match["id"], *_RULE_NOT_FOUND)
        return Reply(200, {"security_group_rule": rule})

    def _neutron_create_rules(self, _: re.Match[str], __: Any, body: Any) -> Reply:
        body = body or {}
        if "security_group_rules" in body:
            # A bulk create is all or nothing.
            rules = [self._new_rule(r) for r in body["security_group_rules"]]
            for rule in rules:
                self._add_rule(rule)
            return Reply(201, {"security_group_rules": rules})
        rule = self._new_rule(body.get("security_group_rule") or {})
        self._add_rule(rule)
        return Reply(201, {"security_group_rule": rule})

    def _neutron_delete_rule(self, match: re.Match[str], *_: Any) -> Reply:
        rule = self._one(self.security_group_rules, match["id"], *_RULE_NOT_FOUND)
        group = self.security_groups[rule["security_group_id"]]
        group["security_group_rules"] = [
            r for r in group["security_group_rules"] if r["id"] != rule["id"]
        ]
        group["revision_number"] += 1
        del self.security_group_rules[rule["id"]]
        return Reply(204)
