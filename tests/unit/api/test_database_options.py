"""A new database's character set and collation are checked against its engine's own lists
(as the host's engines describe them) before anything is recorded or asked of a guest:
at instance create and at POST .../databases, for PostgreSQL and MariaDB alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import falcon.testing
import pytest

from tests import rows
from trove_svc.domain import catalog
from trove_svc.store.models import Datastore, DatastoreVersion, Instance, Task

Keep = Callable[[str, list[dict[str, Any]]], None]


@pytest.fixture
def described(
    client: falcon.testing.TestClient,
    keep_description: Keep,
    postgresql_described: list[dict[str, Any]],
    mariadb_described: list[dict[str, Any]],
) -> None:
    """PostgreSQL and MariaDB versions, described as the host's engines describe them
    (their binaries are nowhere: a test that asked an engine again would fail)."""
    catalog.ensure_defaults([catalog.HostDatastore("mariadb", "10.11", "/nonexistent")])
    keep_description("postgresql", postgresql_described)
    keep_description("mariadb", mariadb_described)


def _create(datastore: str, database: dict[str, Any]) -> dict[str, Any]:
    return {
        "instance": {
            "name": "x",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": datastore},
            "databases": [{"name": "shop", **database}],
        }
    }


def _active(datastore: str) -> str:
    version = DatastoreVersion.select().join(Datastore).where(Datastore.name == datastore).get()
    rows.instance(id=f"i-{datastore}", datastore_version=version)
    return f"/v1.0/p1/instances/i-{datastore}/databases"


REFUSED = [
    # PostgreSQL: an encoding the engine has no locale for cannot match a database's
    # locale; a collation's SQL name or an ICU name is no locale to LC_COLLATE, and the C
    # library tells c.utf8 from C.utf8.
    ("postgresql", {"character_set": "LATIN1"}, "character_set", "an encoding of a locale"),
    ("postgresql", {"character_set": "klingon"}, "character_set", "an encoding of a locale"),
    ("postgresql", {"collate": "ucs_basic"}, "collate", "a locale the engine knows"),
    ("postgresql", {"collate": "en-US-x-icu"}, "collate", "a locale the engine knows"),
    ("postgresql", {"collate": "c.utf8"}, "collate", "a locale the engine knows"),
    ("postgresql", {"collate": "C' TEMPLATE template1"}, "collate", "a locale the engine"),
    ("mariadb", {"character_set": "klingon"}, "character_set", "a character set the engine"),
    ("mariadb", {"collate": "utf8mb4_nope"}, "collate", "a collation the engine knows"),
]


@pytest.mark.parametrize(("datastore", "options", "option", "rule"), REFUSED)
def test_a_create_with_what_the_engine_does_not_list_is_refused_naming_the_option(
    client: falcon.testing.TestClient,
    token: str,
    described: None,
    datastore: str,
    options: dict[str, str],
    option: str,
    rule: str,
) -> None:
    result = client.simulate_post(
        "/v1.0/p1/instances",
        json=_create(datastore, options),
        headers={"X-Auth-Token": token},
    )
    assert result.status_code == 400, result.text
    message = result.json["badRequest"]["message"]
    assert message.startswith(f"The {option} of database 'shop': it must be {rule}")
    assert options[option] not in message
    assert Instance.select().count() == 0 and Task.select().count() == 0


@pytest.mark.parametrize(("datastore", "options", "option", "rule"), REFUSED)
def test_adding_a_database_the_engine_could_not_make_is_refused_before_the_guest_is_asked(
    client: falcon.testing.TestClient,
    token: str,
    described: None,
    datastore: str,
    options: dict[str, str],
    option: str,
    rule: str,
) -> None:
    path = _active(datastore)
    body = {"databases": [{"name": "shop", **options}]}
    result = client.simulate_post(path, json=body, headers={"X-Auth-Token": token})
    # This test's instance has no guest: a request past the check would be 503.
    assert result.status_code == 400, result.text
    assert result.json["badRequest"]["message"].startswith(f"The {option} of database 'shop'")
    assert Task.select().count() == 0


@pytest.mark.parametrize(
    ("datastore", "options"),
    [
        ("postgresql", {"character_set": "UTF8", "collate": "C.utf8"}),
        ("postgresql", {"character_set": "utf8", "collate": "POSIX"}),
        ("mariadb", {"character_set": "utf8mb4", "collate": "utf8mb4_general_ci"}),
        ("mariadb", {"character_set": "LATIN1", "collate": "latin1_swedish_ci"}),
    ],
)
def test_what_the_engine_lists_gets_past_the_check(
    client: falcon.testing.TestClient,
    token: str,
    described: None,
    datastore: str,
    options: dict[str, str],
) -> None:
    path = _active(datastore)
    body = {"databases": [{"name": "shop", **options}]}
    result = client.simulate_post(path, json=body, headers={"X-Auth-Token": token})
    # Checked, and on to the guest, which this test's instance has not.
    assert result.status_code == 503
    assert result.json["serviceUnavailable"]["message"].endswith("has no guest to ask.")


def test_the_engine_is_asked_only_when_a_database_asks_for_an_option(
    client: falcon.testing.TestClient, token: str
) -> None:
    """No description is kept (and /usr/bin has no PostgreSQL to ask): a database without
    a character set or collation never needs one."""
    path = _active("postgresql")
    plain = {"databases": [{"name": "shop"}]}
    result = client.simulate_post(path, json=plain, headers={"X-Auth-Token": token})
    assert result.status_code == 503
    assert result.json["serviceUnavailable"]["message"].endswith("has no guest to ask.")
