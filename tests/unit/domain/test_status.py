from __future__ import annotations

import pytest

from trove_svc.domain import errors, status


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("ACTIVE", "REBOOT"),
        ("ACTIVE", "RESIZE"),
        ("ACTIVE", "SHUTDOWN"),
        ("BUILD", "ACTIVE"),
        ("ERROR", "REBOOT"),
        ("ERROR", "SHUTDOWN"),
        ("REBOOT", "ACTIVE"),
        ("RESIZE", "ERROR"),
        # A delete may start anywhere, even over a delete that got stuck.
        ("BUILD", "SHUTDOWN"),
        ("REBOOT", "SHUTDOWN"),
        ("SHUTDOWN", "SHUTDOWN"),
    ],
)
def test_allowed_moves(current: str, target: str) -> None:
    status.require_transition("i", current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("BUILD", "REBOOT"),
        ("REBOOT", "RESIZE"),
        ("RESIZE", "REBOOT"),
        ("ERROR", "RESIZE"),
        ("SHUTDOWN", "ACTIVE"),
    ],
)
def test_refused_moves_are_conflicts(current: str, target: str) -> None:
    with pytest.raises(errors.Conflict):
        status.require_transition("i", current, target)
