"""Nova's volume attachments for the OpenStack replay: a server's Cinder volumes."""

from __future__ import annotations

import re
from typing import Any

from tests.openstack_replay_base import UID, ApiError, Json, Reply, Route, new_uuid, timestamp
from tests.openstack_replay_nova import SERVERS, NovaReplay

ATTACHMENTS = rf"{SERVERS}/{UID}/os-volume_attachments"


class NovaVolumeAttachments(NovaReplay):
    """Answers below /compute/v2.1/servers/<id>/os-volume_attachments."""

    def _nova_attachment_routes(self) -> list[Route]:
        return [
            ("GET", ATTACHMENTS, True, self._nova_attachments),
            ("POST", ATTACHMENTS, True, self._nova_attach),
            ("GET", rf"{ATTACHMENTS}/(?P<volume>[^/]+)", True, self._nova_attachment),
            ("DELETE", rf"{ATTACHMENTS}/(?P<volume>[^/]+)", True, self._nova_detach),
        ]

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
            "bdm_uuid": new_uuid(),
        }

    def _attached(self, server: Json) -> list[Json]:
        return [
            self.volumes[a["id"]]
            for a in server["os-extended-volumes:volumes_attached"]
            if a["id"] in self.volumes
        ]

    def _nova_attachments(self, match: re.Match[str], *_: Any) -> Reply:
        server = self._stored_server(match["id"])
        views = [self._attachment_view(server, v) for v in self._attached(server)]
        return Reply(200, {"volumeAttachments": views})

    def _nova_attachment(self, match: re.Match[str], *_: Any) -> Reply:
        server = self._stored_server(match["id"])
        for volume in self._attached(server):
            if volume["id"] == match["volume"]:
                return Reply(200, {"volumeAttachment": self._attachment_view(server, volume)})
        raise ApiError(404, f"Volume {match['volume']} is not attached to {server['id']}")

    def _nova_attach(self, match: re.Match[str], _: Any, body: Any) -> Reply:
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
        attachment_id = new_uuid()
        volume.update(
            {
                "status": "in-use",
                "updated_at": timestamp(),
                "attachments": [
                    {
                        "id": volume["id"],
                        "attachment_id": attachment_id,
                        "volume_id": volume["id"],
                        "server_id": server["id"],
                        "host_name": None,
                        "device": device,
                        "attached_at": timestamp(),
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
        return Reply(200, attached)

    def _nova_detach(self, match: re.Match[str], *_: Any) -> Reply:
        server = self._stored_server(match["id"])
        for volume in self._attached(server):
            if volume["id"] == match["volume"]:
                volume.update({"status": "available", "attachments": [], "updated_at": timestamp()})
                server["os-extended-volumes:volumes_attached"] = [
                    a
                    for a in server["os-extended-volumes:volumes_attached"]
                    if a["id"] != volume["id"]
                ]
                return Reply(202)
        raise ApiError(404, f"Volume {match['volume']} is not attached to {server['id']}")
