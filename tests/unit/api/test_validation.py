"""Every string of every request body is data: a character that would change what a file,
a command line or a template means is refused before any schema or responder sees it, in
whichever field it comes, and so is a number that is not finite."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest

from tests import rows, support
from trove_svc.api import app as api_app
from trove_svc.api.openapi import METHODS
from trove_svc.api.validation import unfit_value
from trove_svc.bus.client import Bus
from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.security import tokens
from trove_svc.security.keys import KeyRing, ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import Task
from trove_wire.seal import new_key

# A key for a map whose keys the client picks (configuration values, say).
ANY_KEY = "chosen_key"
CONTROL = "ok\nnext line"


def _body_taking_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, route, request schema) for every operation the app serves with a body,
    read from the same route table the app and its OpenAPI document are built from."""
    keys = ServiceKeys(new_key())
    served = api_app.routes(
        Settings(state_dir=Path("unused")), Bus("amqp://127.0.0.1:1/", KeyRing(keys)), keys
    )
    found = []
    for route in served:
        for method in METHODS:
            name = f"on_{method}" + (f"_{route.suffix}" if route.suffix else "")
            schema = getattr(getattr(route.resource, name, None), "request_schema", None)
            if schema is not None:
                found.append((method, route.template, schema))
    return found


def _string_places(schema: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a body the schema lets hold a string, as a path of keys and indices
    (ANY_KEY for a key the client picks)."""
    if not isinstance(schema, dict):
        return
    for alternative in schema.get("oneOf", []) + schema.get("anyOf", []):
        yield from _string_places(alternative, path)
    kinds = schema.get("type", [])
    kinds = kinds if isinstance(kinds, list) else [kinds]
    enum = schema.get("enum", [])
    # No type and no other rule: anything, a string too (an alternative that only
    # requires properties is a rule on an object, not a place of its own).
    untyped = not any(rule in schema for rule in ("type", "enum", "oneOf", "anyOf", "required"))
    if "string" in kinds or any(isinstance(value, str) for value in enum) or untyped:
        yield path
    if "object" in kinds:
        properties = schema.get("properties", {})
        for name, property_schema in properties.items():
            yield from _string_places(property_schema, (*path, name))
        additional = schema.get("additionalProperties", True)
        if isinstance(additional, dict):
            yield from _string_places(additional, (*path, ANY_KEY))
        elif additional is True and not properties:
            yield (*path, ANY_KEY)  # an object of anything
    if "array" in kinds:
        yield from _string_places(schema.get("items", {}), (*path, 0))


def _body_with(path: tuple[Any, ...], leaf: Any) -> Any:
    """The smallest body holding `leaf` at `path`."""
    body = leaf
    for part in reversed(path):
        body = [body] if isinstance(part, int) else {part: body}
    return body


OPERATIONS = _body_taking_operations()
CASES = [
    pytest.param(method, route, place, id=f"{method} {route} {'.'.join(map(str, place))}")
    for method, route, schema in OPERATIONS
    for place in dict.fromkeys(_string_places(schema))
    if place  # a body that is one bare string is not an object: its schema refuses it
]


@pytest.fixture(scope="module")
def roomy_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[falcon.testing.TestClient]:
    """One app for the many cases below (each asks nothing of the store or the bus)."""
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"))
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    app, _ = support.api_app(settings, "amqp://127.0.0.1:1/")
    yield falcon.testing.TestClient(app)
    database.close()


@pytest.fixture(scope="module")
def admin_token(roomy_client: falcon.testing.TestClient) -> str:
    return tokens.issue("p1", "alice", True, now=0.0)


def _path(route: str) -> str:
    """The route with the token's project, and an id or name for each other part."""
    return re.sub(r"{(\w+)}", lambda m: "p1" if m[1] == "project_id" else "x-1", route)


def _send(
    client: falcon.testing.TestClient, token: str, method: str, path: str, body: Any
) -> falcon.testing.Result:
    return client.simulate_request(
        method.upper(),
        path,
        body=json.dumps(body),
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
    )


def test_every_operation_with_a_body_has_string_places_to_try() -> None:
    operations = {(method, route) for method, route, _ in OPERATIONS}
    tried = {(case.values[0], case.values[1]) for case in CASES}
    assert len(operations) >= 14 and tried == operations


@pytest.mark.parametrize(("method", "route", "place"), CASES)
def test_a_control_character_in_any_string_of_any_body_is_refused_naming_the_field(
    roomy_client: falcon.testing.TestClient,
    admin_token: str,
    method: str,
    route: str,
    place: tuple[Any, ...],
) -> None:
    result = _send(roomy_client, admin_token, method, _path(route), _body_with(place, CONTROL))
    assert result.status_code == 400, result.text
    where = ".".join(str(part) for part in place)
    assert result.json == {
        "badRequest": {"code": 400, "message": f"{where}: must not hold control characters."}
    }


@pytest.mark.parametrize(
    ("method", "route"), [pytest.param(m, r, id=f"{m} {r}") for m, r, _ in OPERATIONS]
)
def test_a_control_character_in_a_property_name_is_refused_without_echoing_it(
    roomy_client: falcon.testing.TestClient, admin_token: str, method: str, route: str
) -> None:
    result = _send(roomy_client, admin_token, method, _path(route), {"name\x00": 1})
    assert result.status_code == 400
    assert result.json["badRequest"]["message"] == (
        "body: property names must not hold control characters."
    )


@pytest.mark.parametrize(
    ("character", "words"),
    [
        ("\x00", "control characters"),
        ("\r", "control characters"),
        ("\x1b", "control characters"),
        ("\x7f", "control characters"),
        ("\x85", "control characters"),  # NEL: a line break to YAML 1.1
        ("\u2028", "line separators"),
        ("\u2029", "paragraph separators"),
        ("\ud800", "unpaired surrogates"),
    ],
)
def test_each_unfit_character_is_named_by_its_kind(character: str, words: str) -> None:
    body = {"instance": {"users": [{"name": "u", "password": f"secret{character}"}]}}
    assert unfit_value(body) == f"instance.users.0.password: must not hold {words}."


def test_a_property_name_at_any_depth_is_held_to_the_rule() -> None:
    body = {"configuration": {"values": {"work_mem\n": 1}}}
    assert (
        unfit_value(body)
        == "configuration.values: property names must not hold control characters."
    )


def test_the_first_offence_in_the_body_is_the_one_named() -> None:
    body = {"a": ["fine", {"b": "x\ty"}], "c": "\x01"}
    assert unfit_value(body) == "a.1.b: must not hold control characters."


def test_letters_of_any_script_and_emoji_are_fine() -> None:
    assert unfit_value({"name": "nächtlich 夜間 🌙", "n": [1, 2.5, True, None]}) is None


@pytest.mark.parametrize(
    "text",
    [
        '{"configuration": {"name": "g", "values": {"random_page_cost": 1e999}}}',
        '{"configuration": {"name": "g", "values": {"random_page_cost": NaN}}}',
        '{"configuration": {"name": "g", "values": {"random_page_cost": -Infinity}}}',
    ],
)
def test_numbers_that_are_not_finite_are_refused_naming_the_field(
    roomy_client: falcon.testing.TestClient, admin_token: str, text: str
) -> None:
    result = roomy_client.simulate_post(
        "/v1.0/p1/configurations",
        body=text,
        headers={"X-Auth-Token": admin_token, "Content-Type": "application/json"},
    )
    assert result.status_code == 400
    assert result.json["badRequest"]["message"] == (
        "configuration.values.random_page_cost: must be a finite number."
    )


def test_a_refused_body_records_nothing(
    roomy_client: falcon.testing.TestClient, admin_token: str
) -> None:
    rows.instance()
    schedules = "/v1.0/p1/instances/i-1/schedules"
    schedule = {"name": "nightly\n- hosts: all", "cron": "0 3 * * *"}
    result = _send(roomy_client, admin_token, "post", schedules, {"schedule": schedule})
    assert result.status_code == 400
    assert Task.select().count() == 0
    schedule["name"] = "nächtlich 🌙"
    result = _send(roomy_client, admin_token, "post", schedules, {"schedule": schedule})
    assert result.status_code == 200, result.text
