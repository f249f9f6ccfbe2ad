"""How a run reaches its instance under mitogen's strategy (runner.through_mitogen)."""

from __future__ import annotations

import sys

from trove_svc.taskmanager.runner import through_mitogen

PYTHON = {"ansible_python_interpreter": sys.executable}


def test_this_machine_reached_as_root_through_become_is_one_sudo_connection() -> None:
    local = {"ansible_connection": "local", "ansible_become": True, **PYTHON}
    assert through_mitogen(local) == {
        "ansible_connection": "mitogen_sudo",
        "ansible_user": "root",
        **PYTHON,
    }


def test_becoming_root_by_name_is_the_same_connection() -> None:
    local = {"ansible_connection": "local", "ansible_become": True, "ansible_become_user": "root"}
    assert through_mitogen(local) == {"ansible_connection": "mitogen_sudo", "ansible_user": "root"}


def test_other_connections_are_kept_as_they_are() -> None:
    kept = [
        # The service runs as root: nothing to become.
        {"ansible_connection": "local", **PYTHON},
        {"ansible_connection": "local", "ansible_become": False},
        # Another account than root: become keeps saying which.
        {"ansible_connection": "local", "ansible_become": True, "ansible_become_user": "app"},
        # Pool hosts and servers: over ssh, become there.
        {"ansible_connection": "ssh", "ansible_host": "192.0.2.7", "ansible_become": True},
        {"ansible_host": "192.0.2.8", "ansible_user": "debian", "ansible_become": True},
    ]
    for connection in kept:
        assert through_mitogen(connection) == connection
