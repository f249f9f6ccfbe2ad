"""Every failure answers in Trove's one error shape: {"<kind>": {"code", "message"}}."""

from __future__ import annotations

import falcon.testing
import pytest

from tests import rows


def assert_trove_error(result: falcon.testing.Result, status: int, kind: str) -> str:
    assert result.status_code == status, result.text
    body = result.json
    assert list(body) == [kind]
    assert body[kind]["code"] == status
    assert isinstance(body[kind]["message"], str) and body[kind]["message"]
    return str(body[kind]["message"])


def test_unknown_route(client: falcon.testing.TestClient, token: str) -> None:
    result = client.simulate_get("/v1.0/p1/nothing-here", headers={"X-Auth-Token": token})
    assert_trove_error(result, 404, "itemNotFound")


def test_wrong_method(client: falcon.testing.TestClient, token: str) -> None:
    result = client.simulate_patch("/v1.0/p1/flavors", headers={"X-Auth-Token": token})
    assert_trove_error(result, 405, "badMethod")


def test_body_too_large(client: falcon.testing.TestClient, token: str) -> None:
    result = client.simulate_post(
        "/v1.0/p1/instances", headers={"X-Auth-Token": token}, body="x" * 5000
    )
    assert_trove_error(result, 413, "overLimit")


def test_invalid_json(client: falcon.testing.TestClient, token: str) -> None:
    result = client.simulate_post(
        "/v1.0/p1/instances",
        body="{nope",
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
    )
    assert_trove_error(result, 400, "badRequest")


def test_schema_violation_names_the_field(client: falcon.testing.TestClient, token: str) -> None:
    result = client.simulate_post(
        "/v1.0/p1/instances",
        headers={"X-Auth-Token": token},
        json={"instance": {"name": "x", "flavorRef": "1", "volume": {"size": "big"}}},
    )
    message = assert_trove_error(result, 400, "badRequest")
    assert message.startswith("instance.volume.size:")


@pytest.mark.parametrize("header", [None, "not-a-token"])
def test_missing_or_bad_token(client: falcon.testing.TestClient, header: str | None) -> None:
    headers = {"X-Auth-Token": header} if header else {}
    result = client.simulate_get("/v1.0/p1/instances", headers=headers)
    assert_trove_error(result, 401, "unauthorized")


def test_other_project_in_path(client: falcon.testing.TestClient, token: str) -> None:
    result = client.simulate_get("/v1.0/p2/instances", headers={"X-Auth-Token": token})
    assert_trove_error(result, 403, "forbidden")


def test_admin_routes_need_the_admin_role(client: falcon.testing.TestClient, token: str) -> None:
    result = client.simulate_get("/v1.0/p1/mgmt/instances", headers={"X-Auth-Token": token})
    assert_trove_error(result, 403, "forbidden")


def test_unbuilt_action_is_a_clear_4xx(client: falcon.testing.TestClient, token: str) -> None:
    rows.instance(provisioned=False)
    result = client.simulate_post(
        "/v1.0/p1/instances/i-1/action",
        headers={"X-Auth-Token": token},
        json={"stop": {}},
    )
    message = assert_trove_error(result, 400, "badRequest")
    assert "not support" in message
    missing = client.simulate_post(
        "/v1.0/p1/instances/i-2/action",
        headers={"X-Auth-Token": token},
        json={"stop": {}},
    )
    assert_trove_error(missing, 404, "itemNotFound")


def test_unknown_action_is_a_bad_request(client: falcon.testing.TestClient, token: str) -> None:
    unknown = client.simulate_post(
        "/v1.0/p1/instances/i-1/action", headers={"X-Auth-Token": token}, json={"explode": {}}
    )
    assert_trove_error(unknown, 400, "badRequest")


def test_versions_need_no_token(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/")
    assert result.status_code == 200 and result.json["versions"][0]["id"] == "v1.0"
