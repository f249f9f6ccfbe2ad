"""The OpenAPI document stays in step with the routes the app really serves."""

from __future__ import annotations

import falcon
import falcon.inspect
import falcon.testing

from trove_svc.api.openapi import METHODS


def _served(app: falcon.App[falcon.Request, falcon.Response]) -> set[tuple[str, str]]:
    """Every route and method the app answers, but those of features not built yet."""
    served = set()
    for route in falcon.inspect.inspect_routes(app):
        if route.class_name == "NotBuilt":
            continue
        for method in route.methods:
            if not method.internal and method.method.lower() in METHODS:
                served.add((route.path, method.method.lower()))
    return served


def test_every_served_route_is_documented_and_nothing_else(
    app: falcon.App[falcon.Request, falcon.Response],
    client: falcon.testing.TestClient,
) -> None:
    document = client.simulate_get("/openapi.json").json
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == _served(app)


def test_every_body_taking_operation_has_a_schema(client: falcon.testing.TestClient) -> None:
    document = client.simulate_get("/openapi.json").json
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch"):
                assert "requestBody" in operation, (path, method)


def test_operation_ids_are_unique(client: falcon.testing.TestClient) -> None:
    document = client.simulate_get("/openapi.json").json
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_lists_document_paging(client: falcon.testing.TestClient) -> None:
    document = client.simulate_get("/openapi.json").json
    get_instances = document["paths"]["/v1.0/{project_id}/instances"]["get"]
    assert {p["name"] for p in get_instances["parameters"]} >= {"limit", "marker"}
