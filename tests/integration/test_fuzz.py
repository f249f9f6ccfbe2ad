"""Schemathesis against /openapi.json: no 5xx, no response the document does not allow.

The app runs in-process on a store of its own and a RabbitMQ vhost of its own with no
task manager, so fuzzed creates are recorded and cast but never built.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import falcon
import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests import support
from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.security import tokens
from trove_svc.store.db import open_store

pytestmark = pytest.mark.integration

PROJECT = "fuzz"


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[falcon.App, str]]:
    if not support.broker_reachable():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672")
    vhost = support.create_vhost()
    state_dir: Path = tmp_path_factory.mktemp("fuzz")
    app_settings = Settings(
        state_dir=state_dir,
        call_timeout=1.0,
        transport_url=f"amqp://guest:guest@127.0.0.1:5672/{vhost}",
    )
    database = open_store(app_settings.effective_database_url)
    catalog.ensure_defaults(catalog.host_datastores())
    token = tokens.issue(PROJECT, "fuzzer", False, now=app_settings.clock())
    support.declare_control_plane(app_settings.transport_url)
    app, bus = support.api_app(app_settings, app_settings.transport_url)
    yield app, token
    bus.close()
    database.close()
    support.delete_vhost(vhost)


EXAMPLES_PER_OPERATION = 25
# What the document promises: no server error, and every status, content type, header and
# body as documented. Schemathesis's heuristics that a schema-valid body must be accepted
# do not apply: names, markers and flavors are checked against data, with a 4xx.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def test_api_never_fails_and_keeps_its_document(fuzz_app: tuple[falcon.App, str]) -> None:
    app, token = fuzz_app
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            # Aim at the token's own project, so the fuzz gets past the tenancy check.
            if case.path_parameters and "project_id" in case.path_parameters:
                case.path_parameters["project_id"] = PROJECT
            # The health check answers 503 by design here: no task manager or conductor runs.
            expected = CHECKS[1:] if case.operation.path == "/healthcheck" else CHECKS
            case.call_and_validate(headers={"X-Auth-Token": token}, checks=expected)

        fuzz()


def _careless_bodies() -> dict[str, bytes]:
    unicode_name = "é漢😀\u202e" * 60
    return {
        "deep": b"[" * 100_000 + b"]" * 100_000,
        "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "huge": b'{"instance": {"name": "' + b"x" * 1_000_000 + b'"}}',
        "not UTF-8": b'{"instance": {"name": "\xff\xfe\xc0"}}',
        "wrong types": json.dumps(
            {"instance": {"name": 5, "flavorRef": [], "volume": "big", "users": {}}}
        ).encode(),
        "unicode": json.dumps(
            {"instance": {"name": unicode_name, "flavorRef": "1", "volume": {"size": 1}}}
        ).encode(),
        "a list": b"[1, 2, 3]",
        "a number": b"12",
        "nothing": b"",
    }


def test_careless_bodies_on_every_route_get_a_short_4xx(
    fuzz_app: tuple[falcon.App, str],
) -> None:
    app, token = fuzz_app
    client = falcon.testing.TestClient(app)
    document = client.simulate_get("/openapi.json").json
    bodies = _careless_bodies()
    tried = 0
    for template, item in document["paths"].items():
        if template == "/healthcheck":
            continue  # 503 by design here: no task manager or conductor runs
        path = template.replace("{project_id}", PROJECT)
        path = re.sub(r"\{[a-z_]+\}", "x-1", path)
        for method in item:
            for name, body in bodies.items():
                result = client.simulate_request(
                    method.upper(),
                    path,
                    body=body,
                    headers={"X-Auth-Token": token, "Content-Type": "application/json"},
                )
                tried += 1
                assert result.status_code < 500, (method, path, name, result.text[:300])
                if result.status_code >= 400:
                    assert len(result.content) <= 4096, (method, path, name, len(result.content))
    assert tried > 300
