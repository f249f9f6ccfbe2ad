"""A second operation on a busy instance answers 409, and nothing changes."""

from __future__ import annotations

import falcon.testing

from tests import rows
from trove_svc.store.models import Instance, Task


def _instance(status: str) -> None:
    rows.instance(status=status)


def _post_action(
    client: falcon.testing.TestClient, token: str, body: dict[str, object]
) -> falcon.testing.Result:
    return client.simulate_post(
        "/v1.0/p1/instances/i-1/action", json=body, headers={"X-Auth-Token": token}
    )


def test_busy_instance_refuses_another_task(client: falcon.testing.TestClient, token: str) -> None:
    _instance("ACTIVE")
    Task.create(
        id="t-1",
        instance_id="i-1",
        project_id="p1",
        action="restart",
        state="RUNNING",
        created_at=0,
    )
    result = _post_action(client, token, {"restart": {}})
    assert result.status_code == 409 and "busy" in result.json["conflictingRequest"]["message"]
    assert Instance.get_by_id("i-1").status == "ACTIVE"
    assert Task.select().count() == 1


def test_delete_is_taken_while_busy_and_undone_if_it_cannot_be_sent(
    client: falcon.testing.TestClient, token: str
) -> None:
    """A delete is never refused for a busy instance (its task cancels the other); with no
    bus to hand it to, it answers 503 and leaves everything as it was."""
    _instance("BUILD")
    Task.create(
        id="t-1",
        instance_id="i-1",
        project_id="p1",
        action="create",
        state="RUNNING",
        created_at=0,
    )
    deleted = client.simulate_delete("/v1.0/p1/instances/i-1", headers={"X-Auth-Token": token})
    assert deleted.status_code == 503
    assert Instance.get_by_id("i-1").status == "BUILD"
    assert [(t.id, t.state) for t in Task.select()] == [("t-1", "RUNNING")]


def test_resize_while_rebooting_is_a_conflict(
    client: falcon.testing.TestClient, token: str
) -> None:
    _instance("REBOOT")
    result = _post_action(client, token, {"resize": {"flavorRef": "2"}})
    assert result.status_code == 409
    assert Instance.get_by_id("i-1").flavor_id == "1"


def test_deleting_again_changes_nothing(client: falcon.testing.TestClient, token: str) -> None:
    _instance("SHUTDOWN")
    Task.create(
        id="t-1",
        instance_id="i-1",
        project_id="p1",
        action="delete",
        state="RUNNING",
        created_at=0,
    )
    result = client.simulate_delete("/v1.0/p1/instances/i-1", headers={"X-Auth-Token": token})
    assert result.status_code == 202
    assert Task.select().count() == 1


def test_reset_status_is_for_admins_and_fails_what_was_pending(
    client: falcon.testing.TestClient,
    token: str,
) -> None:
    from trove_svc.security import tokens

    _instance("BUILD")
    Task.create(
        id="t-1", instance_id="i-1", project_id="p1", action="create", state="QUEUED", created_at=0
    )
    refused = _post_action(client, token, {"reset_status": {}})
    assert refused.status_code == 403
    admin = tokens.issue("p1", "root", True, now=0.0)
    reset = _post_action(client, admin, {"reset_status": {}})
    assert reset.status_code == 202
    instance = Instance.get_by_id("i-1")
    assert instance.status == "ERROR" and "administrator" in instance.fault_message
    assert Task.get_by_id("t-1").state == "FAILED"
