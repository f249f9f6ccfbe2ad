"""Started as root, trove-svc runs its API, task manager and conductor as its own
unprivileged account, and no tenant's data is on any command line while it works (every
local account can read /proc/*/cmdline). Root is reached only through Ansible's become."""

from __future__ import annotations

import pwd
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import support

pytestmark = pytest.mark.integration

PROJECT = "privileges"
# What the tenant sends; none of it may show on a command line.
TENANT_DATA = {
    "name": "cmdline-probe-instance",
    "database": "cmdline_probe_db",
    "user": "cmdline_probe_user",
    "password": "cmdline-probe-Pw-31",
    "cidr": "10.77.0.0/16",
    "new_cidr": "10.78.0.0/16",
}


@pytest.fixture(scope="module")
def deployment() -> Iterator[support.Service]:
    service = support.Service()
    service.start()
    yield service
    service.cleanup()


def processes() -> dict[int, tuple[int, str, str]]:
    """Every live process: pid -> (parent pid, user, command line)."""
    found = {}
    listed = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,user:32=,args="],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in listed.splitlines():
        pid, ppid, user, *args = line.split(None, 3)
        found[int(pid)] = (int(ppid), user, args[0] if args else "")
    return found


def parts_of(service: support.Service, seen: dict[int, tuple[int, str, str]]) -> dict[int, str]:
    """The service's own processes: `trove-svc up`, its parts, and gunicorn's workers
    (pid -> user). What the parts start through sudo is Ansible's become, not a part."""
    assert service.process is not None
    top = service.process.pid
    parts = {pid for pid, (ppid, _, _) in seen.items() if ppid == top}
    workers = {
        pid for pid, (ppid, _, _) in seen.items() if ppid in parts and "api" in seen[ppid][2]
    }
    return {pid: seen[pid][1] for pid in {top} | parts | workers if pid in seen}


def postgresql_backend_title(user: str, args: str) -> bool:
    """PostgreSQL titles each session's backend "postgres: <user> <database> <client>",
    once, at its start, whatever update_process_title says: the engine's doing, not a
    command line trove-svc wrote. The README's trust boundaries say so (hidepid)."""
    return user.startswith("trove-") and args.startswith("postgres: ")


def sample_while(done: Any, timeout: float = 180) -> list[dict[int, tuple[int, str, str]]]:
    samples = []
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the operation did not end in time"
        samples.append(processes())
        time.sleep(0.05)
    return samples


def test_the_parts_run_unprivileged_and_no_tenant_data_is_on_a_command_line(
    deployment: support.Service,
) -> None:
    token = deployment.token(PROJECT)
    body = {
        "instance": {
            "name": TENANT_DATA["name"],
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
            "databases": [{"name": TENANT_DATA["database"]}],
            "users": [
                {
                    "name": TENANT_DATA["user"],
                    "password": TENANT_DATA["password"],
                    "databases": [{"name": TENANT_DATA["database"]}],
                }
            ],
            "access": {"allowed_cidrs": [TENANT_DATA["cidr"]]},
        }
    }
    created = deployment.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    assert created.status == 200, created.body
    instance_id = created.body["instance"]["id"]
    path = f"/v1.0/{PROJECT}/instances/{instance_id}"

    def settled() -> bool:
        shown = deployment.request("GET", path, token).body["instance"]
        assert shown["status"] != "ERROR", shown
        return bool(support.active_and_healthy(shown))

    samples = sample_while(settled)
    access = {"instance": {"access": {"allowed_cidrs": [TENANT_DATA["new_cidr"]]}}}
    assert deployment.request("PUT", path, token, access).status == 202
    time.sleep(0.5)  # the change has begun before its end is waited for
    samples += sample_while(settled)

    service_user = deployment.settings().service_user
    pwd.getpwnam(service_user)  # made by the set-up
    for seen in samples:
        users = parts_of(deployment, seen)
        assert len(users) >= 4, users  # up, API (with its workers), task manager, conductor
        assert set(users.values()) == {service_user}, users
    ansible_runs = [
        args for seen in samples for _, user, args in seen.values() if "ansible-playbook" in args
    ]
    assert ansible_runs, "no Ansible run was seen while the instance was built and changed"
    for seen in samples:
        for _, user, args in seen.values():
            if postgresql_backend_title(user, args):
                continue
            leaked = [name for name, value in TENANT_DATA.items() if value in args]
            assert not leaked, f"{leaked} on the command line of {user}: {args[:300]}"
    run_inputs = list(Path(deployment.state_dir, "runs").glob("*/env/extravars"))
    assert run_inputs and all(p.stat().st_mode & 0o077 == 0 for p in run_inputs)
    deployment.request("DELETE", path, token)
    deployment.wait_gone(token, PROJECT, instance_id)
