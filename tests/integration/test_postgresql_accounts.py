"""Databases, users and root of a PostgreSQL instance, through its guest, end to end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests import support
from tests.support import orders_instance

pytestmark = pytest.mark.integration

PROJECT = "e2e-accounts"
PASSWORD = "Pw-4b8e2d71-known-to-the-test"
# What the server answers a user without CONNECT on the database (insufficient privilege).
NO_CONNECT = "permission denied for database"
# The password trove-tempest-plugin gives its users: 8 characters.
TEMPEST_PASSWORD = "PassW0rd"


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


@pytest.fixture(scope="module")
def instance(service: support.Service, token: str) -> Iterator[dict[str, Any]]:
    ready = orders_instance(service, token, PROJECT, PASSWORD)
    yield ready
    service.request("DELETE", f"/v1.0/{PROJECT}/instances/{ready['id']}", token)


def _path(instance: dict[str, Any], tail: str) -> str:
    return f"/v1.0/{PROJECT}/instances/{instance['id']}/{tail}"


def _login_error(instance: dict[str, Any], user: str, password: str, dbname: str) -> str | None:
    """Why a stock client's login is refused, or None if it gets in."""
    try:
        psycopg.connect(
            host=instance["ip"][0],
            port=instance["port"],
            user=user,
            password=password,
            dbname=dbname,
            connect_timeout=3,
        ).close()
    except psycopg.OperationalError as exc:
        return str(exc)
    return None


def _connects(instance: dict[str, Any], user: str, password: str, dbname: str) -> bool:
    return _login_error(instance, user, password, dbname) is None


def test_databases_are_created_and_deleted(
    service: support.Service, token: str, instance: dict[str, Any]
) -> None:
    created = service.request(
        "POST",
        _path(instance, "databases"),
        token,
        {"databases": [{"name": "reports"}, {"name": "archive"}]},
    )
    assert created.status == 202, created.body
    listed = service.request("GET", _path(instance, "databases"), token)
    assert {"reports", "archive"} <= {d["name"] for d in listed.body["databases"]}
    # A database the guest made lets in only the users granted it, not everyone (PUBLIC).
    assert NO_CONNECT in (_login_error(instance, "shop", PASSWORD, "reports") or "")
    paged = service.request("GET", _path(instance, "databases") + "?limit=2", token)
    assert len(paged.body["databases"]) == 2 and paged.body["links"][0]["rel"] == "next"
    deleted = service.request("DELETE", _path(instance, "databases/archive"), token)
    assert deleted.status == 202
    listed = service.request("GET", _path(instance, "databases"), token)
    assert "archive" not in {d["name"] for d in listed.body["databases"]}
    missing = service.request("DELETE", _path(instance, "databases/archive"), token)
    assert missing.status == 404 and "archive" in missing.body["itemNotFound"]["message"]


@pytest.mark.parametrize("bad", ["bad;name", "x'--", 'q"uote', "pg_catalog", "a b"])
def test_invalid_database_name_is_refused_and_nothing_changes(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
    bad: str,
) -> None:
    before = service.request("GET", _path(instance, "databases"), token).body
    resp = service.request(
        "POST", _path(instance, "databases"), token, {"databases": [{"name": bad}]}
    )
    assert resp.status == 400
    assert "name" in resp.body["badRequest"]["message"]
    assert service.request("GET", _path(instance, "databases"), token).body == before


def test_user_lifecycle(service: support.Service, token: str, instance: dict[str, Any]) -> None:
    created = service.request(
        "POST",
        _path(instance, "users"),
        token,
        {
            "users": [
                {
                    "name": "analyst",
                    "password": "first-pw-1-long",
                    "databases": [{"name": "orders"}],
                }
            ]
        },
    )
    assert created.status == 202, created.body
    assert _connects(instance, "analyst", "first-pw-1-long", "orders")
    # Nor does a database the instance was created with (audit: no user was granted it).
    assert NO_CONNECT in (_login_error(instance, "analyst", "first-pw-1-long", "audit") or "")
    names = {
        u["name"] for u in service.request("GET", _path(instance, "users"), token).body["users"]
    }
    assert {"analyst", "shop"} <= names and "os_admin" not in names
    shown = service.request("GET", _path(instance, "users/analyst"), token).body["user"]
    assert shown["databases"] == [{"name": "orders"}]

    granted = service.request(
        "PUT", _path(instance, "users/analyst/databases"), token, {"databases": [{"name": "audit"}]}
    )
    assert granted.status == 202
    access = service.request("GET", _path(instance, "users/analyst/databases"), token)
    assert {d["name"] for d in access.body["databases"]} == {"orders", "audit"}
    assert _connects(instance, "analyst", "first-pw-1-long", "audit")
    revoked = service.request("DELETE", _path(instance, "users/analyst/databases/audit"), token)
    assert revoked.status == 202
    access = service.request("GET", _path(instance, "users/analyst/databases"), token)
    assert access.body["databases"] == [{"name": "orders"}]
    assert NO_CONNECT in (_login_error(instance, "analyst", "first-pw-1-long", "audit") or "")
    assert _connects(instance, "analyst", "first-pw-1-long", "orders")

    changed = service.request(
        "PUT",
        _path(instance, "users"),
        token,
        {"users": [{"name": "analyst", "password": "second-pw-2-long"}]},
    )
    assert changed.status == 202
    assert not _connects(instance, "analyst", "first-pw-1-long", "orders")
    assert _connects(instance, "analyst", "second-pw-2-long", "orders")

    renamed = service.request(
        "PUT", _path(instance, "users/analyst"), token, {"user": {"name": "auditor"}}
    )
    assert renamed.status == 202
    assert service.request("GET", _path(instance, "users/analyst"), token).status == 404
    deleted = service.request("DELETE", _path(instance, "users/auditor"), token)
    assert deleted.status == 202
    assert service.request("GET", _path(instance, "users/auditor"), token).status == 404


def test_trove_tempest_users_8_character_password_is_taken_by_default(
    service: support.Service, token: str, instance: dict[str, Any]
) -> None:
    created = service.request(
        "POST",
        _path(instance, "users"),
        token,
        {
            "users": [
                {
                    "name": "foo_user",
                    "password": TEMPEST_PASSWORD,
                    "databases": [{"name": "orders"}],
                }
            ]
        },
    )
    assert created.status == 202, created.body
    assert _connects(instance, "foo_user", TEMPEST_PASSWORD, "orders")
    too_short = service.request(
        "POST", _path(instance, "users"), token, {"users": [{"name": "bar", "password": "Pw-1234"}]}
    )
    assert too_short.status == 400
    assert "at least 8 characters" in too_short.body["badRequest"]["message"]
    assert service.request("DELETE", _path(instance, "users/foo_user"), token).status == 202


def test_a_raised_minimum_refuses_it_before_anything_is_built() -> None:
    """A deployment of its own (its API alone: a refused create reaches nothing else)."""
    raised = support.Service(extra_env={"TROVE_SVC_PASSWORD_MIN_LENGTH": "9"}, parts=("api",))
    try:
        raised.start()
        token = raised.token(PROJECT)
        body = {
            "instance": {
                "name": "tempest",
                "flavorRef": "1",
                "volume": {"size": 1},
                "datastore": {"type": "postgresql"},
                "users": [{"name": "foo_user", "password": TEMPEST_PASSWORD}],
            }
        }
        refused = raised.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
        assert refused.status == 400
        assert "at least 9 characters" in refused.body["badRequest"]["message"]
        listed = raised.request("GET", f"/v1.0/{PROJECT}/instances", token)
        assert listed.body["instances"] == []
    finally:
        raised.cleanup()


@pytest.mark.parametrize(
    "bad", ["rob'; DROP TABLE x; --", "semi;colon", "os_admin", "pg_x", "root", "postgres"]
)
def test_invalid_user_name_is_refused_and_nothing_changes(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
    bad: str,
) -> None:
    before = service.request("GET", _path(instance, "users"), token).body
    resp = service.request(
        "POST",
        _path(instance, "users"),
        token,
        {"users": [{"name": bad, "password": "pw-123456-long"}]},
    )
    assert resp.status == 400
    message = resp.body["badRequest"]["message"]
    assert "letter" in message or "reserved" in message
    assert service.request("GET", _path(instance, "users"), token).body == before


def test_root_enable_show_disable(
    service: support.Service, token: str, instance: dict[str, Any]
) -> None:
    assert service.request("GET", _path(instance, "root"), token).body == {"rootEnabled": False}
    enabled = service.request("POST", _path(instance, "root"), token)
    assert enabled.status == 200
    root = enabled.body["user"]
    assert root["name"] == "root" and len(root["password"]) >= 16
    assert _connects(instance, "root", root["password"], "postgres")
    # A superuser: in every database, whoever was granted it.
    assert _connects(instance, "root", root["password"], "audit")
    assert service.request("GET", _path(instance, "root"), token).body == {"rootEnabled": True}
    chosen = service.request(
        "POST", _path(instance, "root"), token, {"password": "Root-chosen-pw-9"}
    )
    assert chosen.body["user"]["password"] == "Root-chosen-pw-9"
    assert _connects(instance, "root", "Root-chosen-pw-9", "postgres")
    disabled = service.request("DELETE", _path(instance, "root"), token)
    assert disabled.status == 204
    refused = _login_error(instance, "root", "Root-chosen-pw-9", "postgres") or ""
    assert "not permitted to log in" in refused
    assert service.request("GET", _path(instance, "root"), token).body == {"rootEnabled": False}
