"""What operators expect: metrics Prometheus accepts, an audit trail of every operation,
JSON logs that follow a request, and a create's progress on the command line."""

from __future__ import annotations

import json
import re
import subprocess
import threading
from typing import Any

import pytest

from tests import support

pytestmark = pytest.mark.integration

PROJECT = "operations"


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


def _create(service: support.Service, token: str, name: str, **extra: Any) -> str:
    body = {
        "instance": {
            "name": name,
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
            **extra,
        }
    }
    created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    assert created.status == 200, created.body
    return str(created.body["instance"]["id"])


def _counters(service: support.Service) -> dict[str, float]:
    text = service.request("GET", "/metrics", None).raw.decode()
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"(trove_\w+(?:_total|_count))(\{.*\})? (\S+)", line)
        if match:
            found[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return found


def _moved(before: dict[str, float], after: dict[str, float], name: str, **labels: str) -> float:
    def total(values: dict[str, float]) -> float:
        return sum(
            v
            for k, v in values.items()
            if k.startswith(name + "{") and all(f'{a}="{b}"' in k for a, b in labels.items())
        )

    return total(after) - total(before)


def test_metrics_count_what_happened_and_promtool_accepts_them(
    service: support.Service, token: str
) -> None:
    before = _counters(service)
    good = _create(service, token, "metered")
    group = support.unstartable_group(service, token, PROJECT)
    bad = _create(service, token, "fails", configuration=group)
    service.wait_for(token, PROJECT, good, support.active_and_healthy)
    service.wait_for(token, PROJECT, bad, lambda i: i["status"] == "ERROR")
    restarted = service.request(
        "POST", f"/v1.0/{PROJECT}/instances/{good}/action", token, {"restart": {}}
    )
    assert restarted.status == 202
    service.wait_for(token, PROJECT, good, support.active_and_healthy)

    exposition = service.request("GET", "/metrics", None).raw
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=exposition, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    after = _counters(service)
    tasks = "trove_tasks_seconds_count"
    assert _moved(before, after, tasks, action="create", outcome="succeeded") == 1
    assert _moved(before, after, tasks, action="create", outcome="failed") == 1
    assert _moved(before, after, tasks, action="restart", outcome="succeeded") == 1
    assert _moved(before, after, "trove_heartbeats_total", outcome="recorded") >= 1
    requests = "trove_api_requests_seconds_count"
    assert _moved(before, after, requests, route="/v1.0/{project_id}/instances", status="200") >= 2
    for instance_id in (good, bad):
        service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance_id}", token)


def _watch(service: support.Service, instance_id: str, out: list[str]) -> None:
    done = subprocess.run(
        [str(support.VENV_BIN / "trove-svc"), "task", "watch", instance_id, "--timeout", "120"],
        env=service.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    out += [done.stdout, str(done.returncode)]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_logs_follow_a_request_and_watch_shows_the_steps() -> None:
    service = support.Service(extra_env={"TROVE_SVC_LOG_FORMAT": "json"})
    service.start()
    try:
        token = service.token(PROJECT)
        created = service.request(
            "POST",
            f"/v1.0/{PROJECT}/instances",
            token,
            {
                "instance": {
                    "name": "logged",
                    "flavorRef": "1",
                    "volume": {"size": 1},
                    "datastore": {"type": "postgresql"},
                }
            },
        )
        assert created.status == 200
        instance_id = created.body["instance"]["id"]
        watched: list[str] = []
        watcher = threading.Thread(target=_watch, args=(service, instance_id, watched))
        watcher.start()
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy)
        watcher.join(130)
        output, code = watched
        assert code == "0", output
        assert "step 1: " in output and "postgresql : " in output
        assert output.rstrip().endswith("create SUCCEEDED")

        users = service.request(
            "POST",
            f"/v1.0/{PROJECT}/instances/{instance_id}/users",
            token,
            {"users": [{"name": "app", "password": "A-long-enough-pw-1"}]},
        )
        assert users.status == 202
        lines = _json_lines(service.log_path.read_text())
        guest_log = service.state_dir / "instances" / instance_id / "guest.log"
        guest_lines = _json_lines(guest_log.read_text())
        create_id = created.request_id
        by_request = {
            line["part"] for line in lines + guest_lines if line.get("request_id") == create_id
        }
        assert {"api", "taskmanager"} <= by_request, by_request
        users_id = users.request_id
        assert any(line.get("request_id") == users_id for line in guest_lines)
        assert {line["part"] for line in lines} >= {"api", "taskmanager", "conductor", "up"}
    finally:
        service.cleanup()


def test_account_operations_are_in_the_audit_trail_and_duplicates_conflict(
    service: support.Service, token: str
) -> None:
    instance_id = _create(service, token, "audited", databases=[{"name": "orders"}])
    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy)
    base = f"/v1.0/{PROJECT}/instances/{instance_id}"
    user = {"users": [{"name": "app", "password": "A-long-enough-pw-1"}]}
    assert service.request("POST", f"{base}/users", token, user).status == 202
    again = service.request("POST", f"{base}/users", token, user)
    assert (
        again.status == 409
        and "'app' already exists" in again.body["conflictingRequest"]["message"]
    )
    duplicate_db = service.request(
        "POST", f"{base}/databases", token, {"databases": [{"name": "orders"}]}
    )
    assert duplicate_db.status == 409
    assert service.request("DELETE", f"{base}/users/app", token).status == 202
    assert service.request("POST", f"{base}/root", token, {}).status == 200
    tasks = service.request("GET", f"{base}/tasks", token).body["tasks"]
    trail = [(t["action"], t["state"]) for t in tasks]
    assert trail == [
        ("create", "SUCCEEDED"),
        ("create_users", "SUCCEEDED"),
        ("create_users", "FAILED"),
        ("create_databases", "FAILED"),
        ("delete_user", "SUCCEEDED"),
        ("enable_root", "SUCCEEDED"),
    ]
    assert all(t["requested_by"] == PROJECT for t in tasks)
    listed = service.cli("task", "list", "--instance", instance_id)
    assert "delete_user" in listed and "enable_root" in listed
    service.request("DELETE", base, token)
