"""MariaDB and Redis instances end to end, through the same path as PostgreSQL."""

from __future__ import annotations

from typing import Any

import pymysql
import pytest
import redis

from tests import support

pytestmark = [pytest.mark.integration, pytest.mark.long]

PROJECT = "more-datastores"


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


def _create(service: support.Service, token: str, datastore: str, **spec: Any) -> dict[str, Any]:
    return service.create_healthy(
        token, PROJECT, f"{datastore}-one", datastore={"type": datastore}, **spec
    )


def _delete_and_check(
    service: support.Service, token: str, instance: dict[str, Any], datastore: str
) -> None:
    os_user = (service.state_dir / "instances" / instance["id"] / datastore).owner()
    resp = service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)
    assert resp.status == 202
    service.wait_gone(token, PROJECT, instance["id"])
    assert support.leftovers(service, instance["id"], os_user) == []


def _path(instance: dict[str, Any], tail: str) -> str:
    return f"/v1.0/{PROJECT}/instances/{instance['id']}/{tail}"


def _mariadb(
    instance: dict[str, Any], user: str, password: str, database: str | None = None
) -> pymysql.connections.Connection[Any]:
    return pymysql.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user=user,
        password=password,
        database=database,
        autocommit=True,
    )


def test_mariadb_instance(service: support.Service, token: str) -> None:
    instance = _create(
        service,
        token,
        "mariadb",
        databases=[{"name": "shop", "character_set": "utf8mb4"}],
        users=[{"name": "clerk", "password": "Clerk-pw-1-long", "databases": [{"name": "shop"}]}],
    )
    conn = _mariadb(instance, "clerk", "Clerk-pw-1-long", "shop")
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE item (id int PRIMARY KEY)")
        cursor.execute("INSERT INTO item VALUES (1)")
        cursor.execute("SELECT id FROM item")
        assert cursor.fetchall() == ((1,),)
        cursor.execute("SELECT @@innodb_buffer_pool_size")
        assert cursor.fetchone() == (256 * 1024 * 1024,)  # half of flavor 1's 512 MB
    conn.close()
    # The mariadb client, as a user runs it with what the API shows, reaches the instance on
    # its own address at 3306 (the machine's own MariaDB is on 127.0.0.1:3306).
    (address,) = instance["ip"]
    assert instance["port"] == 3306
    query = "SELECT @@bind_address, COUNT(*) FROM shop.item"
    said = support.stock_client(
        ["mariadb", "-h", address, "-P", "3306", "-u", "clerk", "-N", "-B", "-e", query],
        MYSQL_PWD="Clerk-pw-1-long",
    )
    assert said == f"{address}\t1"

    made = service.request(
        "POST",
        _path(instance, "databases"),
        token,
        {"databases": [{"name": "reports", "character_set": "utf8mb4", "collate": "utf8mb4_bin"}]},
    )
    assert made.status == 202, made.body
    listed = service.request("GET", _path(instance, "databases"), token).body["databases"]
    assert {"name": "reports", "character_set": "utf8mb4", "collate": "utf8mb4_bin"} in listed
    added = service.request(
        "POST",
        _path(instance, "users"),
        token,
        {
            "users": [
                {
                    "name": "analyst",
                    "password": "Analyst-pw-2-long",
                    "host": "127.0.0.1",
                    "databases": [{"name": "reports"}],
                }
            ]
        },
    )
    assert added.status == 202, added.body
    users = service.request("GET", _path(instance, "users"), token).body["users"]
    assert {(u["name"], u["host"]) for u in users} == {("clerk", "%"), ("analyst", "127.0.0.1")}
    shown = service.request("GET", _path(instance, "users/analyst@127.0.0.1"), token)
    assert shown.body["user"]["databases"] == [{"name": "reports"}]
    conn = _mariadb(instance, "analyst", "Analyst-pw-2-long", "reports")
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE r (v int)")
    conn.close()
    bad = service.request(
        "POST",
        _path(instance, "databases"),
        token,
        {"databases": [{"name": "x`; DROP DATABASE shop; --"}]},
    )
    assert bad.status == 400 and "letter" in bad.body["badRequest"]["message"]

    root = service.request("POST", _path(instance, "root"), token).body["user"]
    assert root["name"] == "root"
    _mariadb(instance, "root", root["password"]).close()
    assert service.request("GET", _path(instance, "root"), token).body == {"rootEnabled": True}
    assert service.request("DELETE", _path(instance, "root"), token).status == 204

    _delete_and_check(service, token, instance, "mariadb")


def test_redis_instance(service: support.Service, token: str) -> None:
    refused = service.request(
        "POST",
        f"/v1.0/{PROJECT}/instances",
        token,
        {
            "instance": {
                "name": "r",
                "flavorRef": "1",
                "volume": {"size": 1},
                "datastore": {"type": "redis"},
                "databases": [{"name": "zero"}],
            }
        },
    )
    assert refused.status == 400
    assert "not supported for redis" in refused.body["badRequest"]["message"]

    instance = _create(
        service, token, "redis", users=[{"name": "cache", "password": "Cache-pw-1-long"}]
    )
    client = redis.Redis(
        host=instance["ip"][0], port=instance["port"], username="cache", password="Cache-pw-1-long"
    )
    client.set("k", "v")
    assert client.get("k") == b"v"
    # So does redis-cli, at 6379 (the machine's own Redis is on 127.0.0.1:6379).
    assert instance["port"] == 6379
    said = support.stock_client(
        ["redis-cli", "-h", instance["ip"][0], "-p", "6379", "--user", "cache", "GET", "k"],
        REDISCLI_AUTH="Cache-pw-1-long",
    )
    assert said == "v"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=instance["ip"][0], port=instance["port"]).ping()

    added = service.request(
        "POST",
        _path(instance, "users"),
        token,
        {"users": [{"name": "worker", "password": "Worker-pw-2-long"}]},
    )
    assert added.status == 202, added.body
    names = {
        u["name"] for u in service.request("GET", _path(instance, "users"), token).body["users"]
    }
    assert names == {"cache", "worker"}
    worker = redis.Redis(
        host=instance["ip"][0],
        port=instance["port"],
        username="worker",
        password="Worker-pw-2-long",
    )
    assert worker.get("k") == b"v"
    with pytest.raises(redis.exceptions.NoPermissionError):
        worker.config_get("maxmemory")  # an @admin command

    for method, tail in (("GET", "databases"), ("POST", "root"), ("GET", "root")):
        resp = service.request(method, _path(instance, tail), token)
        assert resp.status == 400, (method, tail, resp.body)
        assert "not supported for redis" in resp.body["badRequest"]["message"]

    _delete_and_check(service, token, instance, "redis")


def _mariadb_value(instance: dict[str, Any], sql: str) -> Any:
    conn = _mariadb(instance, "clerk", "Clerk-pw-1-long", "shop")
    with conn.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    conn.close()
    assert row is not None
    return row[0]


def _settle(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
    body: Any,
    method: str = "POST",
    tail: str = "action",
) -> dict[str, Any]:
    path = f"/v1.0/{PROJECT}/instances/{instance['id']}" + (f"/{tail}" if tail else "")
    resp = service.request(method, path, token, body)
    assert resp.status == 202, resp.body
    return service.wait_for(token, PROJECT, instance["id"], support.active_and_healthy)


def test_mariadb_lifecycle(service: support.Service, token: str) -> None:
    instance = _create(
        service,
        token,
        "mariadb",
        databases=[{"name": "shop"}],
        users=[{"name": "clerk", "password": "Clerk-pw-1-long", "databases": [{"name": "shop"}]}],
    )
    conn = _mariadb(instance, "clerk", "Clerk-pw-1-long", "shop")
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE kept (v varchar(20))")
        cursor.execute("INSERT INTO kept VALUES ('before')")
    conn.close()

    _settle(service, token, instance, {"restart": {}})
    assert _mariadb_value(instance, "SELECT v FROM kept") == "before"

    resized = _settle(service, token, instance, {"resize": {"flavorRef": "2"}})
    assert resized["flavor"]["id"] == "2"
    assert _mariadb_value(instance, "SELECT @@innodb_buffer_pool_size") == 512 * 1024 * 1024

    grown = _settle(service, token, instance, {"resize": {"volume": {"size": 2}}})
    assert grown["volume"]["size"] == 2

    (address,) = instance["ip"]
    assert _mariadb_value(instance, "SELECT @@bind_address") == address
    _settle(
        service,
        token,
        instance,
        {"instance": {"access": {"is_public": True}}},
        method="PUT",
        tail="",
    )
    # Public or not, it listens on its own address alone; its users' hosts say who may log in.
    assert _mariadb_value(instance, "SELECT @@bind_address") == address
    _settle(
        service,
        token,
        instance,
        {"instance": {"access": {"is_public": False}}},
        method="PUT",
        tail="",
    )
    assert _mariadb_value(instance, "SELECT @@bind_address") == address
    assert _mariadb_value(instance, "SELECT v FROM kept") == "before"

    tasks = service.request("GET", _path(instance, "tasks"), token).body["tasks"]
    assert [t["action"] for t in tasks] == [
        "create",
        "restart",
        "resize",
        "resize_volume",
        "update_access",
        "update_access",
    ]
    _delete_and_check(service, token, instance, "mariadb")
