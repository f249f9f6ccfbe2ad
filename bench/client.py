"""What the benches ask of a private trove-svc: its API under one project, instances made
and waited for, and deleted."""

from __future__ import annotations

from typing import Any

from tests import support


class ApiClient:
    def __init__(self, service: support.Service, project: str) -> None:
        self.service = service
        self.project = project
        self.token = service.token(project)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.service.request(method, f"/v1.0/{self.project}{path}", self.token, body)
        assert answer.status < 300, (method, path, answer.status, answer.body)
        return answer.body

    def wait_healthy(self, instance_id: str, timeout: float = 3600) -> dict[str, Any]:
        return self.service.wait_for(
            self.token, self.project, instance_id, support.active_and_healthy, timeout=timeout
        )

    def create(self, name: str, flavor: str, size: int, **spec: Any) -> dict[str, Any]:
        """Ask for an instance; returns it as the create answered (BUILD)."""
        body = {"instance": {"name": name, "flavorRef": flavor, "volume": {"size": size}, **spec}}
        return dict(self.request("POST", "/instances", body)["instance"])

    def delete_instance(self, instance_id: str) -> None:
        self.request("DELETE", f"/instances/{instance_id}")
        self.service.wait_gone(self.token, self.project, instance_id, timeout=300)
