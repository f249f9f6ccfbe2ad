"""A datastore role's start waits for its own server. A server that could not open its port
(another process listens there on this host) fails the run, with the reason in its log; it
is never taken for started because something else answers at that port. (An instance
taken for started that way was built, then its guest agent, logging in to whatever held
the port, reported its datastore down for good.)

Each role runs whole, through the product's runner, as in molecule's scenarios."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import processes, support
from trove_svc.process.settings import PROJECT_ROOT, Settings
from trove_svc.taskmanager.runner import PlaybookRunner, RunResult
from trove_wire import datastores

pytestmark = pytest.mark.integration

# The account the roles' servers run as here.
OS_USER = "nobody"

PLAYBOOK = """
- name: Set up a datastore
  hosts: all
  gather_facts: false
  roles:
    - role: "{{ datastore }}"
"""


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port where another process listens on loopback, accepting connections."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield int(listener.getsockname()[1])


@pytest.fixture
def base_dir() -> Iterator[Path]:
    path = support.shared_tmp_dir("trove-role-start-")
    try:
        yield path
    finally:
        processes.remove_leftovers(path)
        shutil.rmtree(path, ignore_errors=True)


def _run_role(tmp_path: Path, base_dir: Path, port: int, datastore: str) -> RunResult:
    """The datastore's role, whole, through the product's runner, its server in
    `base_dir`/`datastore` at `port`, run as `OS_USER`."""
    ansible_dir = tmp_path / "ansible"
    (ansible_dir / "playbooks").mkdir(parents=True)
    (ansible_dir / "playbooks" / "setup.yml").write_text(PLAYBOOK)
    shutil.copy(PROJECT_ROOT / "ansible.cfg", ansible_dir / "ansible.cfg")
    (ansible_dir / "roles").symlink_to(PROJECT_ROOT / "roles")
    role_vars = datastores.get(datastore).role_vars(
        {
            "base_dir": str(base_dir / datastore),
            "port": port,
            "os_user": OS_USER,
            "run_as_os_user": True,
            "memory_mb": 256,
            "admin_password": "role-start-admin-pw",
        }
    )
    return PlaybookRunner(Settings(state_dir=tmp_path / "state", ansible_dir=ansible_dir)).run(
        ident=f"{datastore}-{time.monotonic_ns()}",
        playbook="setup.yml",
        instance_id="i-1",
        extravars={"datastore": datastore, **role_vars},
        secrets={},
        connection={"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    )


def _a_dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


@pytest.mark.parametrize("datastore", sorted(datastores.REGISTRY))
def test_a_server_whose_port_is_taken_fails_the_run(
    tmp_path: Path, base_dir: Path, taken_port: int, datastore: str
) -> None:
    result = _run_role(tmp_path, base_dir, taken_port, datastore)
    assert not result.ok, f"{datastore} was taken for started at a port another process holds"
    logs = [path for path in (base_dir / datastore).rglob("*.log") if path.is_file()]
    said = "\n".join(path.read_text(errors="replace") for path in logs)
    assert "already in use" in said.lower(), (result.describe_failure(), said[-2000:])


def test_a_pid_file_a_dead_redis_left_does_not_hold_up_a_failed_start(
    tmp_path: Path, base_dir: Path, taken_port: int
) -> None:
    """The start's wait takes a pid file for a server coming up; one a killed server left
    goes with the start, so a server that cannot come up fails the step after a few
    seconds rather than the wait's full minute, and no stale pid file is left."""
    server_dir = base_dir / "redis"
    server_dir.mkdir()
    stale = server_dir / "redis.pid"
    stale.write_text(f"{_a_dead_pid()}\n")
    owner = pwd.getpwnam(OS_USER)
    for path in (server_dir, stale):
        os.chown(path, owner.pw_uid, owner.pw_gid)
    result = _run_role(tmp_path, base_dir, taken_port, "redis")
    assert not result.ok, "redis was taken for started at a port another process holds"
    assert not stale.exists(), "the dead server's pid file outlived the start"
