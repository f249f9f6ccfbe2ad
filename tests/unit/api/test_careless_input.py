"""Careless input gets a short, clear 4xx: nothing echoed, nothing recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from tests import rows, support
from trove_svc.process.settings import Settings
from trove_svc.store.models import Instance, Task

CREATE = "/v1.0/p1/instances"


@pytest.fixture
def client(app: Any, tmp_path: Path) -> falcon.testing.TestClient:
    """The API with its default body limit (1 MB), on the store `app` opened."""
    roomy, _ = support.api_app(Settings(state_dir=tmp_path), "amqp://127.0.0.1:1/")
    return falcon.testing.TestClient(roomy)


def _create(**changes: object) -> dict[str, object]:
    instance: dict[str, object] = {
        "name": "x",
        "flavorRef": "1",
        "volume": {"size": 1},
        "datastore": {"type": "postgresql"},
    }
    instance.update(changes)
    return {"instance": instance}


def _post(
    client: falcon.testing.TestClient, token: str, path: str, body: bytes, kind: str = "json"
) -> falcon.testing.Result:
    content_type = {"json": "application/json", "form": "application/x-www-form-urlencoded"}
    return client.simulate_post(
        path, body=body, headers={"X-Auth-Token": token, "Content-Type": content_type[kind]}
    )


def _active_instance() -> None:
    rows.instance()


def test_a_deep_body_is_refused_before_it_is_parsed(
    client: falcon.testing.TestClient, token: str
) -> None:
    result = _post(client, token, CREATE, b"[" * 100_000)
    assert result.status_code == 400
    assert "deeper than 32" in result.json["badRequest"]["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"instance": ', "not valid JSON"),
        ('{"instance": "\u00e9\u6f22\ud83d\ude00"}'.encode("utf-8", "surrogatepass"), "UTF-8"),
    ],
)
def test_bodies_that_are_not_json_are_bad_requests(
    client: falcon.testing.TestClient, token: str, body: bytes, words: str
) -> None:
    result = _post(client, token, CREATE, body)
    assert result.status_code == 400 and words in result.json["badRequest"]["message"]


def test_a_form_encoded_body_is_an_unsupported_media_type(
    client: falcon.testing.TestClient, token: str
) -> None:
    result = _post(client, token, CREATE, b"instance=x", kind="form")
    assert result.status_code == 415 and result.json["badMediaType"]["code"] == 415


def test_validation_names_the_field_and_rule_and_echoes_nothing(
    client: falcon.testing.TestClient, token: str
) -> None:
    secret = "Unique-Pw-0123456789"
    many = [{"name": f"u{n}", "password": secret} for n in range(5000)]
    result = _post(client, token, CREATE, json.dumps(_create(users=many)).encode())
    assert result.status_code == 400 and len(result.content) < 4096
    assert secret not in result.text
    assert "instance.users" in result.text and "at most" in result.text
    long_name = "n" * 10_000
    result = _post(client, token, CREATE, json.dumps(_create(name=long_name)).encode())
    assert result.status_code == 400 and len(result.content) < 4096
    assert "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn" not in result.text
    assert result.json["badRequest"]["message"] == (
        "instance.name: must be at most 255 characters."
    )
    assert Instance.select().count() == 0 and Task.select().count() == 0


def test_short_passwords_are_refused_with_the_rule(
    client: falcon.testing.TestClient, token: str
) -> None:
    users = [{"name": "shop", "password": "x"}]
    result = _post(client, token, CREATE, json.dumps(_create(users=users)).encode())
    assert result.status_code == 400
    message = result.json["badRequest"]["message"]
    assert "at least 8 characters" in message and "shop" in message
    _active_instance()
    for path, body in (
        ("/v1.0/p1/instances/i-1/users", {"users": [{"name": "u", "password": "short"}]}),
        ("/v1.0/p1/instances/i-1/root", {"password": "short"}),
    ):
        result = _post(client, token, path, json.dumps(body).encode())
        assert result.status_code == 400, (path, result.text)
        assert "at least 8 characters" in result.json["badRequest"]["message"]
    assert Task.select().count() == 0


@pytest.mark.parametrize(
    ("path", "feature"),
    [
        ("/v1.0/p1/clusters", "Clusters"),
        ("/v1.0/p1/instances/i-1/log", "Guest logs"),
        ("/v1.0/p1/modules", "Modules"),
        ("/v1.0/p1/modules/m-1/instances", "Modules"),
        ("/v1.0/p1/instances/i-1/modules/m-1", "Modules"),
        ("/v1.0/p1/clusters/c-1/instances/i-1", "Clusters"),
        ("/v1.0/p1/volume-types", "Volume types"),
        ("/v1.0/p1/volume-types/v-1", "Volume types"),
        ("/v1.0/p1/datastores/postgresql/versions/15/volume-types", "Volume types"),
    ],
)
def test_trove_routes_not_built_yet_say_so(
    client: falcon.testing.TestClient, token: str, path: str, feature: str
) -> None:
    result = client.simulate_get(path, headers={"X-Auth-Token": token})
    assert result.status_code == 501
    assert result.json["notImplemented"]["message"].startswith(f"{feature} are not built")


def test_an_unknown_url_is_named_with_the_routes_near_it(
    client: falcon.testing.TestClient, token: str
) -> None:
    result = client.simulate_get("/v1.0/p1/instancez", headers={"X-Auth-Token": token})
    assert result.status_code == 404
    message = result.json["itemNotFound"]["message"]
    assert "'/v1.0/p1/instancez'" in message and "/v1.0/{project_id}/" in message


def test_a_volume_resize_is_in_the_audit_trail(
    client: falcon.testing.TestClient, token: str
) -> None:
    _active_instance()
    result = _post(
        client, token, "/v1.0/p1/instances/i-1/action", b'{"resize": {"volume": {"size": 2}}}'
    )
    assert result.status_code == 202
    tasks = client.simulate_get(
        "/v1.0/p1/instances/i-1/tasks", headers={"X-Auth-Token": token}
    ).json["tasks"]
    assert [(t["action"], t["state"], t["message"], t["requested_by"]) for t in tasks] == [
        ("resize_volume", "SUCCEEDED", "volume 1 GB to 2 GB", "alice")
    ]


def test_schedules_made_and_removed_are_in_the_audit_trail(
    client: falcon.testing.TestClient, token: str
) -> None:
    _active_instance()
    made = _post(
        client,
        token,
        "/v1.0/p1/instances/i-1/schedules",
        b'{"schedule": {"name": "nightly", "cron": "0 3 * * *", "retention_count": 7}}',
    )
    assert made.status_code == 200, made.text
    schedule_id = made.json["schedule"]["id"]
    headers = {"X-Auth-Token": token}
    for _ in range(2):  # the second finds nothing to remove: recorded as failed
        client.simulate_delete(f"/v1.0/p1/instances/i-1/schedules/{schedule_id}", headers=headers)
    tasks = client.simulate_get("/v1.0/p1/instances/i-1/tasks", headers=headers).json["tasks"]
    assert [(t["action"], t["state"], t["requested_by"]) for t in tasks] == [
        ("schedule_create", "SUCCEEDED", "alice"),
        ("schedule_delete", "SUCCEEDED", "alice"),
        ("schedule_delete", "FAILED", "alice"),
    ]
    assert tasks[0]["message"] == "schedule 'nightly' (0 3 * * *)"


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v1.0/p1/backups", {"backup": {"name": "b", "instance": "nope"}}, 404, "nope"),
        ("/v1.0/p1/backups", {"backup": {"name": "b"}}, 400, "instance"),
        (
            "/v1.0/p1/backups",
            {"backup": {"name": "b", "instance": "i-1", "differential": True, "incremental": 1}},
            400,
            "differential or incremental, not both",
        ),
        (
            "/v1.0/p1/backups",
            {"backup": {"name": "b", "instance": "i-1", "parent_id": "b-0"}},
            400,
            "has none yet",
        ),
        (
            "/v1.0/p1/instances/i-1/schedules",
            {"schedule": {"name": "s", "cron": "every tuesday"}},
            400,
            "not cron syntax",
        ),
        (
            "/v1.0/p1/instances/i-1/schedules",
            {"schedule": {"name": "s", "cron": "* * * * *", "retention_count": 0}},
            400,
            "retention_count",
        ),
        (
            "/v1.0/p1/backup_strategies",
            {"backup_strategy": {"swift_container": "Not A Bucket!"}},
            400,
            "swift_container",
        ),
        (
            "/v1.0/p1/backup_strategies",
            {"backup_strategy": {"instance_id": "someone-elses", "backend": "local"}},
            404,
            "someone-elses",
        ),
        (
            "/v1.0/p1/instances",
            {
                "instance": {
                    "name": "r",
                    "flavorRef": "1",
                    "volume": {"size": 1},
                    "restorePoint": {"backupRef": "missing"},
                }
            },
            404,
            "missing",
        ),
    ],
)
def test_careless_backup_requests_are_refused_and_record_nothing(
    client: falcon.testing.TestClient,
    token: str,
    path: str,
    body: dict[str, Any],
    status: int,
    words: str,
) -> None:
    _active_instance()
    result = _post(client, token, path, json.dumps(body).encode())
    assert result.status_code == status, result.text
    assert words in result.text
    assert Task.select().count() == 0 and Instance.select().count() == 1
