"""Keystone v3 validation against a stand-in that replays Keystone's own answers.

No Keystone can run here; the stand-in serves GET /v3/auth/tokens as Keystone does:
200 with the token body (shape from Keystone's API reference) for a known token, 404
with Keystone's error body for an unknown one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import falcon.testing
import pytest

from tests import support
from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store


def _token_body(project_id: str, roles: list[str]) -> dict[str, Any]:
    domain = {"id": "default", "name": "Default"}
    return {
        "token": {
            "methods": ["password"],
            "user": {
                "domain": domain,
                "id": "2844b2a08be147a08ef58317d6471f1f",
                "name": "alice",
                "password_expires_at": None,
            },
            "audit_ids": ["eNazDbnTSjKIgHd0d4lFVg"],
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "issued_at": "2026-11-22T00:00:00.000000Z",
            "project": {"domain": domain, "id": project_id, "name": "demo"},
            "is_domain": False,
            "roles": [{"id": f"r-{name}", "name": name} for name in roles],
        }
    }


TOKENS = {
    "member-token": _token_body("p1", ["member", "reader"]),
    "admin-token": _token_body("p9", ["admin", "member"]),
}


class FakeKeystone(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        subject = self.headers.get("X-Subject-Token", "")
        FakeKeystone.hits.append(subject)
        if self.path != "/v3/auth/tokens" or not self.headers.get("X-Auth-Token"):
            self._answer(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "The request you have made requires authentication.",
                        "title": "Unauthorized",
                    }
                },
            )
        elif subject in TOKENS:
            self._answer(200, TOKENS[subject], {"X-Subject-Token": subject})
        else:
            self._answer(
                404,
                {
                    "error": {
                        "code": 404,
                        "message": f"Could not find token: {subject}.",
                        "title": "Not Found",
                    }
                },
            )

    def _answer(
        self, code: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def keystone() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeKeystone)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeKeystone.hits = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _client(tmp_path: Path, keystone_url: str) -> falcon.testing.TestClient:
    settings = Settings(state_dir=tmp_path, keystone_url=keystone_url)
    open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    app, _ = support.api_app(settings, "amqp://127.0.0.1:1/")
    return falcon.testing.TestClient(app)


def test_member_acts_in_its_project_only(tmp_path: Path, keystone: str) -> None:
    client = _client(tmp_path, keystone)
    ok = client.simulate_get("/v1.0/p1/instances", headers={"X-Auth-Token": "member-token"})
    assert ok.status_code == 200 and ok.json == {"instances": []}
    other = client.simulate_get("/v1.0/p2/instances", headers={"X-Auth-Token": "member-token"})
    assert other.status_code == 403
    mgmt = client.simulate_get("/v1.0/p1/mgmt/instances", headers={"X-Auth-Token": "member-token"})
    assert mgmt.status_code == 403


def test_admin_role_opens_the_admin_routes(tmp_path: Path, keystone: str) -> None:
    client = _client(tmp_path, keystone)
    mgmt = client.simulate_get("/v1.0/p9/mgmt/instances", headers={"X-Auth-Token": "admin-token"})
    assert mgmt.status_code == 200


def test_unknown_token_is_unauthorized_and_cached(tmp_path: Path, keystone: str) -> None:
    client = _client(tmp_path, keystone)
    for _ in range(3):
        result = client.simulate_get("/v1.0/p1/instances", headers={"X-Auth-Token": "forged"})
        assert result.status_code == 401 and "unauthorized" in result.json
    assert FakeKeystone.hits.count("forged") == 1


def test_valid_token_is_cached(tmp_path: Path, keystone: str) -> None:
    client = _client(tmp_path, keystone)
    for _ in range(3):
        client.simulate_get("/v1.0/p1/flavors", headers={"X-Auth-Token": "member-token"})
    assert FakeKeystone.hits.count("member-token") == 1


def test_keystone_down_is_a_503_in_trove_shape(tmp_path: Path) -> None:
    client = _client(tmp_path, "http://127.0.0.1:1")
    result = client.simulate_get("/v1.0/p1/instances", headers={"X-Auth-Token": "member-token"})
    assert result.status_code == 503 and "serviceUnavailable" in result.json
