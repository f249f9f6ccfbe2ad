"""What Trove's own clients and acceptance tests (trove-tempest-plugin) send is taken as
Trove takes it: 8-character passwords, `replica_of: ""` to detach, `storage_driver`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from tests import rows
from trove_svc.api.app import create_app
from trove_svc.bus.client import Bus
from trove_svc.process.settings import Settings
from trove_svc.security.keys import KeyRing, ServiceKeys
from trove_svc.store.models import Backup, Instance, Task
from trove_wire.envelope import Context
from trove_wire.seal import new_key

# The password trove-tempest-plugin gives its users: 8 characters.
TEMPEST_PASSWORD = "PassW0rd"


class RecordingBus(Bus):
    """The bus, with every cast to the task managers recorded instead of published."""

    def __init__(self, keys: ServiceKeys) -> None:
        super().__init__("amqp://127.0.0.1:1/", KeyRing(keys))
        self.casts: list[dict[str, Any]] = []

    def cast_task(self, method: str, args: dict[str, Any], context: Context) -> None:
        self.casts.append(args)


Api = tuple[falcon.testing.TestClient, RecordingBus]


@pytest.fixture
def api(app: Any, tmp_path: Path) -> Callable[..., Api]:
    """The API under the settings `env` gives (on the store `app` opened), its casts kept."""

    def started(**env: str) -> Api:
        # The state directory set after the settings are read: the test's own is longer
        # than a deployment's may be (its instances' sockets would not fit).
        settings = Settings.from_env(env).with_overrides(state_dir=tmp_path)
        keys = ServiceKeys(new_key())
        bus = RecordingBus(keys)
        return falcon.testing.TestClient(create_app(settings, bus, keys)), bus

    return started


def _send(
    client: falcon.testing.TestClient, token: str, method: str, path: str, body: object
) -> falcon.testing.Result:
    return client.simulate_request(
        method,
        f"/v1.0/p1/{path}",
        body=json.dumps(body),
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
    )


def _create_with_user(client: falcon.testing.TestClient, token: str) -> falcon.testing.Result:
    instance = {
        "name": "tempest",
        "flavorRef": "1",
        "volume": {"size": 1},
        "datastore": {"type": "postgresql"},
        "databases": [{"name": "foo"}],
        "users": [
            {"name": "foo_user", "password": TEMPEST_PASSWORD, "databases": [{"name": "foo"}]}
        ],
    }
    return _send(client, token, "POST", "instances", {"instance": instance})


def test_an_eight_character_password_is_taken_by_default(
    api: Callable[..., Api], token: str
) -> None:
    client, bus = api()
    made = _create_with_user(client, token)
    assert made.status_code == 200, made.text
    assert [t.action for t in Task.select()] == ["create"] and len(bus.casts) == 1


def test_a_raised_minimum_refuses_it_naming_the_rule(api: Callable[..., Api], token: str) -> None:
    client, bus = api(TROVE_SVC_PASSWORD_MIN_LENGTH="9")
    refused = _create_with_user(client, token)
    assert refused.status_code == 400
    message = refused.json["badRequest"]["message"]
    assert "at least 9 characters" in message and "foo_user" in message
    assert TEMPEST_PASSWORD not in refused.text
    assert Instance.select().count() == 0 and bus.casts == []


@pytest.mark.parametrize(
    "detach",
    [{"replica_of": ""}, {"replica_of": None}, {"slave_of": ""}],
)
def test_an_empty_source_detaches_a_replica_as_null_does(
    api: Callable[..., Api], token: str, detach: dict[str, Any]
) -> None:
    rows.instance(id="i-source")
    rows.instance(replica_of_id="i-source")
    client, bus = api()
    answered = _send(client, token, "PATCH", "instances/i-1", {"instance": detach})
    assert answered.status_code == 202, answered.text
    assert [t.action for t in Task.select()] == ["detach"] and len(bus.casts) == 1
    assert Instance.get_by_id("i-1").status == "DETACH"


def test_a_source_named_in_an_update_is_refused(api: Callable[..., Api], token: str) -> None:
    rows.instance(id="i-source")
    rows.instance(replica_of_id="i-source")
    client, bus = api()
    refused = _send(client, token, "PUT", "instances/i-1", {"instance": {"replica_of": "i-source"}})
    assert refused.status_code == 400
    assert "null or" in refused.json["badRequest"]["message"]
    assert Task.select().count() == 0 and bus.casts == []


def _backup(driver: str | None) -> dict[str, Any]:
    return {"backup": {"name": "b", "instance": "i-1", "storage_driver": driver}}


@pytest.mark.parametrize("driver", ["local", None])
def test_a_backup_to_the_local_repository_is_taken_under_any_strategy(
    api: Callable[..., Api], token: str, driver: str | None
) -> None:
    rows.instance()
    client, bus = api()
    made = _send(client, token, "POST", "backups", _backup(driver))
    assert made.status_code == 202, made.text
    assert [t.action for t in Task.select()] == ["backup"] and len(bus.casts) == 1


def test_a_backup_to_s3_needs_a_strategy_with_a_bucket(api: Callable[..., Api], token: str) -> None:
    rows.instance()
    client, bus = api()
    refused = _send(client, token, "POST", "backups", _backup("s3"))
    assert refused.status_code == 400
    assert "swift_container" in refused.json["badRequest"]["message"]
    assert Backup.select().count() == 0 and bus.casts == []
    strategy = {"backup_strategy": {"instance_id": "i-1", "swift_container": "tempest-backups"}}
    assert _send(client, token, "POST", "backup_strategies", strategy).status_code == 200
    made = _send(client, token, "POST", "backups", _backup("s3"))
    assert made.status_code == 202, made.text
    assert Backup.select().count() == 1 and len(bus.casts) == 1


@pytest.mark.parametrize("driver", ["cinder", "swift"])
def test_a_storage_driver_not_served_is_refused_naming_those_served(
    api: Callable[..., Api], token: str, driver: str
) -> None:
    rows.instance()
    client, bus = api()
    refused = _send(client, token, "POST", "backups", _backup(driver))
    assert refused.status_code == 400
    assert refused.json["badRequest"]["message"] == (
        "backup.storage_driver: must be one of 'local', 's3', None."
    )
    assert Backup.select().count() == 0 and bus.casts == []
