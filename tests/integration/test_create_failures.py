"""Creates that must fail: bad requests leave nothing behind; a failed playbook says where."""

from __future__ import annotations

import socket
import sqlite3
from typing import Any

import pytest

from tests import processes, support

pytestmark = pytest.mark.integration

PROJECT = "failures"


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


def _body(**changes: Any) -> dict[str, Any]:
    instance = {
        "name": "x",
        "flavorRef": "1",
        "volume": {"size": 1},
        "datastore": {"type": "postgresql"},
    }
    instance.update(changes)
    return {"instance": instance}


def _store_counts(service: support.Service) -> tuple[int, int]:
    with sqlite3.connect(service.state_dir / "trove-svc.db") as db:
        instances = db.execute(
            "SELECT count(*) FROM instance WHERE project_id = ?", (PROJECT,)
        ).fetchone()[0]
        tasks = db.execute("SELECT count(*) FROM task WHERE project_id = ?", (PROJECT,)).fetchone()[
            0
        ]
    return instances, tasks


@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        (_body(flavorRef="99"), 404, "itemNotFound", "Flavor 99"),
        (_body(datastore={"type": "oracle"}), 404, "itemNotFound", "oracle"),
        (_body(datastore={"type": "postgresql", "version": "7.4"}), 404, "itemNotFound", "7.4"),
        (_body(volume={"size": 0}), 400, "badRequest", "size"),
        (_body(volume=None), 400, "badRequest", "volume"),
        ({"instance": {"flavorRef": "1"}}, 400, "badRequest", "name"),
        ({"server": {}}, 400, "badRequest", "instance"),
        (_body(databases=[{"name": "bad;name"}]), 400, "badRequest", "letter"),
        (_body(users=[{"name": "x'); DROP", "password": "p"}]), 400, "badRequest", "letter"),
        (_body(databases=[{"name": "template1"}]), 400, "badRequest", "reserved"),
        (_body(access={"allowed_cidrs": ["not-a-cidr"]}), 400, "badRequest", "CIDR"),
        (
            _body(
                users=[
                    {"name": "u1", "password": "long-enough-pw", "databases": [{"name": "nope"}]}
                ]
            ),
            400,
            "badRequest",
            "nope",
        ),
    ],
)
def test_bad_create_answers_4xx_and_leaves_nothing(
    service: support.Service,
    token: str,
    body: dict[str, Any],
    status: int,
    kind: str,
    words: str,
) -> None:
    before = sorted(p.name for p in (service.state_dir / "instances").iterdir())
    resp = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    assert resp.status == status, resp.body
    assert set(resp.body) == {kind}
    assert resp.body[kind]["code"] == status
    assert words in resp.body[kind]["message"]
    assert _store_counts(service) == (0, 0)
    assert sorted(p.name for p in (service.state_dir / "instances").iterdir()) == before


def test_malformed_json_is_a_bad_request(service: support.Service, token: str) -> None:
    resp = service.request("POST", f"/v1.0/{PROJECT}/instances", token, raw=b"{not json")
    assert resp.status == 400
    assert resp.body["badRequest"]["code"] == 400
    assert _store_counts(service) == (0, 0)


def test_no_token_is_unauthorized(service: support.Service) -> None:
    resp = service.request("GET", f"/v1.0/{PROJECT}/instances", None)
    assert resp.status == 401 and resp.body["unauthorized"]["code"] == 401


def test_unknown_route_has_the_error_shape(service: support.Service, token: str) -> None:
    resp = service.request("GET", f"/v1.0/{PROJECT}/no-such-thing", token)
    assert resp.status == 404 and resp.body["itemNotFound"]["code"] == 404


def test_failed_playbook_leaves_error_with_the_step_and_nothing_running(
    service: support.Service,
    token: str,
) -> None:
    # A group the API takes fails inside the playbook, at the server's start, after the
    # cluster was made: the clean-up must stop whatever it started.
    group = support.unstartable_group(service, token, PROJECT)
    body = _body(databases=[{"name": "db1"}], configuration=group)
    created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    assert created.status == 200, created.body
    instance_id = created.body["instance"]["id"]
    failed = service.wait_for(
        token, PROJECT, instance_id, lambda i: i["status"] == "ERROR", timeout=120
    )
    assert "Start PostgreSQL" in failed["fault"]["message"], failed["fault"]
    # The datastore's own words, from its log.
    assert "shared memory" in failed["fault"]["details"], failed["fault"]
    instance_dir = service.state_dir / "instances" / instance_id
    assert not (instance_dir / "postgresql" / "data" / "postmaster.pid").exists()
    assert not (instance_dir / "guest.pid").exists()
    assert processes.processes_mentioning(str(instance_dir)) == []
    # Nothing listens where it would have.
    with socket.socket() as probe:
        assert probe.connect_ex((failed["ip"][0], failed["port"])) != 0

    deleted = service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance_id}", token)
    assert deleted.status == 202
    service.wait_gone(token, PROJECT, instance_id)
    assert not instance_dir.exists()


def test_a_task_past_its_time_limit_is_stopped_and_cleaned_up() -> None:
    """With a 3 s limit a create cannot finish: it must end in ERROR, saying so, with
    nothing of the instance left running. A service of its own (its own vhost, from its
    state dir, so it never competes with the session's service for messages)."""
    service = support.Service(extra_env={"TROVE_SVC_TASK_TIMEOUT": "3"})
    service.start()
    try:
        token = service.token(PROJECT)
        created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, _body())
        assert created.status == 200
        instance_id = created.body["instance"]["id"]
        failed = service.wait_for(
            token, PROJECT, instance_id, lambda i: i["status"] == "ERROR", timeout=120
        )
        assert "time limit" in failed["fault"]["message"]
        instance_dir = service.state_dir / "instances" / instance_id
        assert processes.processes_mentioning(str(instance_dir)) == []
        tasks = service.request(
            "GET", f"/v1.0/{PROJECT}/instances/{instance_id}/tasks", token
        ).body["tasks"]
        assert tasks[0]["state"] == "FAILED" and "time limit" in tasks[0]["message"]
    finally:
        service.cleanup()
