"""A guest call a flow makes carries the request id of the task it serves, so the guest's
log lines for a request share the id of the API's and the task manager's."""

from __future__ import annotations

from trove_svc.taskmanager.deps import guest_context
from trove_wire import logs


def test_a_flows_guest_call_carries_the_tasks_request_id() -> None:
    with logs.serving("req-4711"):
        assert guest_context().request_id == "req-4711"
    assert guest_context().request_id == ""
