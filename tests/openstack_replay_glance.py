"""Glance v2 for the OpenStack replay: its version document and the preset images."""

from __future__ import annotations

import re
from typing import Any

from tests.openstack_replay_base import (
    UID,
    ApiError,
    ReplayState,
    Reply,
    Route,
    hex_id,
    new_uuid,
    timestamp,
)


class GlanceReplay(ReplayState):
    """Answers below /image."""

    def _glance_routes(self) -> list[Route]:
        return [
            ("GET", r"/?", False, self._glance_versions),
            ("GET", r"/v2/images", True, self._glance_images),
            ("GET", rf"/v2/images/{UID}", True, self._glance_image),
        ]

    def _add_image(self, name: str) -> None:
        image_id = new_uuid()
        now = timestamp()
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
            "checksum": hex_id(),
            "os_hash_algo": "sha512",
            "os_hash_value": hex_id() * 4,
            "os_hidden": False,
            "owner": hex_id(),
            "size": 343_932_928,
            "min_ram": 0,
            "schema": "/v2/schemas/image",
            "virtual_size": 2_147_483_648,
        }

    def _glance_versions(self, *_: Any) -> Reply:
        versions = [
            {
                "id": f"v2.{minor}",
                "status": "CURRENT" if minor == 17 else "SUPPORTED",
                "links": [{"rel": "self", "href": f"{self.url}/image/v2/"}],
            }
            for minor in range(17, -1, -1)
        ]
        return Reply(300, {"versions": versions})

    def _glance_images(self, _: re.Match[str], query: dict[str, list[str]], __: Any) -> Reply:
        found = self._listed(self.images, query, ("id", "name", "status", "visibility"))
        link = "/v2/images" + (f"?name={query['name'][0]}" if "name" in query else "")
        return Reply(200, {"images": found, "schema": "/v2/schemas/images", "first": link})

    def _glance_image(self, match: re.Match[str], *_: Any) -> Reply:
        image = self.images.get(match["id"])
        if image is None:
            raise ApiError(404, f"No image found with ID {match['id']}")
        return Reply(200, image)
