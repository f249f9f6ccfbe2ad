"""Cinder v3 for the OpenStack replay: volumes in the replay's one project.

A new volume answers `creating` until its first read, then becomes `volume_outcome`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from tests.openstack_replay_base import (
    UID,
    ApiError,
    Json,
    ReplayState,
    Reply,
    Route,
    matches_filters,
    new_uuid,
    timestamp,
)

CINDER_MAX_VERSION = "3.71"
VOLUMES = r"/v3/(?P<project>[^/]+)/volumes"


class CinderReplay(ReplayState):
    """Answers below /volume."""

    def _cinder_routes(self) -> list[Route]:
        return [
            ("GET", r"/?", False, self._cinder_versions),
            ("GET", r"/v3/?", False, self._cinder_versions),
            ("GET", VOLUMES, True, self._cinder_volumes),
            ("GET", rf"{VOLUMES}/detail", True, self._cinder_volumes_detail),
            ("POST", VOLUMES, True, self._cinder_create_volume),
            ("GET", rf"{VOLUMES}/{UID}", True, self._cinder_volume),
            ("DELETE", rf"{VOLUMES}/{UID}", True, self._cinder_delete_volume),
        ]

    def _cinder_versions(self, *_: Any) -> Reply:
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
        return Reply(300, {"versions": [version]})

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
            volume.update({"status": self.volume_outcome, "updated_at": timestamp()})
            if self.volume_outcome == "available":
                volume["os-vol-host-attr:host"] = "replay@lvmdriver-1#lvmdriver-1"
        return volume

    def _cinder_volumes_matching(self, query: dict[str, list[str]]) -> list[Json]:
        return [
            self._settle(v)
            for v in self.volumes.values()
            if matches_filters(v, query, ("name", "status", "id"))
        ]

    def _cinder_volumes(self, match: re.Match[str], query: dict[str, list[str]], _: Any) -> Reply:
        self._own_project(match)
        brief = [
            {"id": v["id"], "links": v["links"], "name": v["name"]}
            for v in self._cinder_volumes_matching(query)
        ]
        return Reply(200, {"volumes": brief})

    def _cinder_volumes_detail(
        self, match: re.Match[str], query: dict[str, list[str]], _: Any
    ) -> Reply:
        self._own_project(match)
        return Reply(200, {"volumes": self._cinder_volumes_matching(query)})

    def _cinder_create_volume(self, match: re.Match[str], _: Any, body: Any) -> Reply:
        self._own_project(match)
        request = (body or {}).get("volume")
        if not isinstance(request, dict):
            raise ApiError(400, "Missing required element 'volume' in request body.")
        size = request.get("size")
        if not isinstance(size, int) or size < 1:
            raise ApiError(400, f"Invalid input for field/attribute size. Value: {size}.")
        volume_id = new_uuid()
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
        return Reply(202, {"volume": dict(self.volumes[volume_id])})

    def _cinder_volume(self, match: re.Match[str], *_: Any) -> Reply:
        self._own_project(match)
        return Reply(200, {"volume": self._settle(self._stored_volume(match["id"]))})

    def _cinder_delete_volume(self, match: re.Match[str], *_: Any) -> Reply:
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
        return Reply(202)
