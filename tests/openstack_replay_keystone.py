"""Keystone v3 for the OpenStack replay: its version documents and password tokens.

A token carries the catalog that points every other service at the replay's one port.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.openstack_replay_base import (
    ApiError,
    Json,
    ReplayState,
    Reply,
    Route,
    hex_id,
)

REGION = "RegionOne"


class KeystoneReplay(ReplayState):
    """Answers below /identity."""

    def _keystone_routes(self) -> list[Route]:
        return [
            ("GET", r"/?", False, self._keystone_versions),
            ("GET", r"/v3/?", False, self._keystone_version),
            ("POST", r"/v3/auth/tokens", False, self._keystone_issue_token),
        ]

    def _catalog(self) -> list[Json]:
        def entry(kind: str, name: str, url: str) -> Json:
            return {
                "endpoints": [
                    {
                        "id": hex_id(),
                        "interface": interface,
                        "region": REGION,
                        "region_id": REGION,
                        "url": url,
                    }
                    for interface in ("public", "internal", "admin")
                ],
                "id": hex_id(),
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

    def _keystone_versions(self, *_: Any) -> Reply:
        return Reply(300, {"versions": {"values": [self._identity_version()]}})

    def _keystone_version(self, *_: Any) -> Reply:
        return Reply(200, {"version": self._identity_version()})

    def _keystone_issue_token(self, _: re.Match[str], __: Any, body: Any) -> Reply:
        identity = ((body or {}).get("auth") or {}).get("identity") or {}
        user = (identity.get("password") or {}).get("user") or {}
        if user.get("name") != self.username or user.get("password") != self.password:
            raise ApiError(401, "The request you have made requires authentication.")
        token = f"gAAAAA{hex_id()}{hex_id()}"
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
                "audit_ids": [hex_id()[:22]],
                "expires_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
                "project": {"domain": domain, "id": self.project_id, "name": self.project_name},
                "is_domain": False,
                "roles": [
                    {"id": hex_id(), "name": "member"},
                    {"id": hex_id(), "name": "reader"},
                ],
                "catalog": self._catalog(),
            }
        }
        return Reply(201, issued, {"X-Subject-Token": token})
