"""A tenant with root on its PostgreSQL instance, who runs shell commands as the instance's
account (`COPY ... TO PROGRAM`), turns the files the control plane reads or writes in its
instance's directory into links (to the task manager's environment, the service key,
/dev/zero, a directory of root's) and makes restarts and resizes fail: no fault, task or
audit trail shows anything of the control plane, nothing is written through a link, and
the task manager's memory stays where it was."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import processes, support
from tests.deployments import PROJECT, create, instance_row, store, wait_until

pytestmark = pytest.mark.integration

MARKER = f"links-marker-{uuid.uuid4().hex}"
# A setting PostgreSQL does not know: the server refuses to start, and says so in its log.
BAD_SETTING = "trove_links_no_such_setting = 1"
MiB = 1024**2


@pytest.fixture(scope="module")
def world() -> Iterator[dict[str, Any]]:
    """A deployment whose task manager is a process of its own, with a marker in its
    environment, and a PostgreSQL instance whose tenant enabled root."""
    if not support.broker_reachable():
        pytest.fail("RabbitMQ is not reachable on 127.0.0.1:5672; run scripts/bootstrap.sh")
    service = support.Service(
        parts=("api", "conductor", "taskmanager"), extra_env={"LINKS_TEST_MARKER": MARKER}
    )
    try:
        service.start()
        token = service.token(PROJECT)
        instance_id = create(service, token, "tenant-links")
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
        root = service.request("POST", f"/v1.0/{PROJECT}/instances/{instance_id}/root", token, {})
        assert root.status == 200, root.body
        (taskmanager,) = service.pids_of("taskmanager")
        yield {
            "service": service,
            "token": token,
            "id": instance_id,
            "root": root.body["user"],
            "taskmanager": taskmanager,
        }
    finally:
        service.cleanup()


def _as_instance_account(world: dict[str, Any], script: str) -> None:
    """What the tenant runs, as the instance's account, through its root login."""
    row = instance_row(world["service"], world["id"])
    with psycopg.connect(
        host=row["host"],
        port=row["port"],
        user=world["root"]["name"],
        password=world["root"]["password"],
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(
            psycopg.sql.SQL("COPY (SELECT 1) TO PROGRAM {}").format(
                psycopg.sql.Literal(f"sh -c {_quote(script)}")
            )
        )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _paths(world: dict[str, Any]) -> dict[str, Path]:
    state = world["service"].state_dir
    base = state / "instances" / world["id"] / "postgresql"
    return {
        "state": state,
        "instance": state / "instances" / world["id"],
        "log": base / "postgresql.log",
        "data": base / "data",
        "key": world["service"].settings().service_key_path,
    }


def _control_plane_secrets(world: dict[str, Any]) -> list[str]:
    """The service key, its path, and the task manager's environment: each of its entries
    (a fault quotes 300 characters of a line, and the environment is one line)."""
    key_path = _paths(world)["key"]
    environ = Path(f"/proc/{world['taskmanager']}/environ").read_bytes().decode()
    # What the attack reads on a control plane that follows the link: the marker is there.
    assert f"LINKS_TEST_MARKER={MARKER}" in environ.split("\0")
    entries = [entry for entry in environ.split("\0") if len(entry) >= 12]
    return [key_path.read_text().strip(), str(key_path), *entries]


def _shown(world: dict[str, Any]) -> dict[str, str]:
    """The instance's fault and its tasks as the API shows them, and the task rows."""
    service: support.Service = world["service"]
    base = f"/v1.0/{PROJECT}/instances/{world['id']}"
    instance = service.request("GET", base, world["token"]).body["instance"]
    listed = service.request("GET", f"{base}/tasks", world["token"]).body
    details = [
        service.request("GET", f"{base}/tasks/{task['id']}", world["token"]).body
        for task in listed["tasks"]
    ]
    with store(service) as db:
        rows = db.execute(
            "SELECT message, failed_step FROM task WHERE instance_id = ?", (world["id"],)
        ).fetchall()
    return {
        "fault": json.dumps(instance.get("fault")),
        "tasks": json.dumps(listed),
        "task details": json.dumps(details),
        "task rows": json.dumps([dict(row) for row in rows]),
    }


def _assert_nothing_of_the_control_plane(world: dict[str, Any], fault_from: str) -> None:
    shown = _shown(world)
    assert fault_from in shown["fault"], shown["fault"]
    own_dir = str(_paths(world)["instance"])
    for where, text in shown.items():
        for secret in _control_plane_secrets(world):
            assert secret not in text, f"{where} shows {secret!r}: {text[:3000]}"
        # Its own directory's path is the tenant's to see; nothing else of the state dir.
        outside_own = text.replace(own_dir, "")
        assert str(_paths(world)["state"]) not in outside_own, f"{where}: {text[:3000]}"
        assert "\\u0000" not in text, f"{where} quotes NUL bytes (a device's, /proc's)"


def _failed(world: dict[str, Any], action: dict[str, Any]) -> None:
    service: support.Service = world["service"]
    answer = service.request(
        "POST", f"/v1.0/{PROJECT}/instances/{world['id']}/action", world["token"], action
    )
    assert answer.status == 202, answer.body
    wait_until(
        lambda: instance_row(service, world["id"])["status"] == "ERROR", 120, "the task fails"
    )


def _repair(world: dict[str, Any], put_back: tuple[str, ...] = ()) -> None:
    """The operator puts the log, the settings and the files in `put_back` (kept by the
    tenant as `<name>.kept`) back, and restarts the instance."""
    paths = _paths(world)
    owner = paths["data"].stat()
    paths["log"].unlink(missing_ok=True)
    paths["log"].touch()
    os.chown(paths["log"], owner.st_uid, owner.st_gid)
    for name in put_back:
        (paths["data"] / name).unlink()
        (paths["data"] / f"{name}.kept").rename(paths["data"] / name)
    auto_conf = paths["data"] / "postgresql.auto.conf"
    kept = [line for line in auto_conf.read_text().splitlines() if line != BAD_SETTING]
    auto_conf.write_text("\n".join(kept) + "\n")
    service: support.Service = world["service"]
    restarted = service.request(
        "POST", f"/v1.0/{PROJECT}/instances/{world['id']}/action", world["token"], {"restart": {}}
    )
    assert restarted.status == 202, restarted.body
    service.wait_for(world["token"], PROJECT, world["id"], support.active_and_healthy)


def _cap_address_space(pid: int, cap: int) -> None:
    """Cap a process's address space as its own account does (root here may lack
    CAP_SYS_RESOURCE, which setting another account's limit takes)."""
    owner = pwd.getpwuid(Path(f"/proc/{pid}").stat().st_uid).pw_name
    subprocess.run(
        ["runuser", "-u", owner, "--", "prlimit", f"--pid={pid}", f"--as={cap}:{cap}"],
        check=True,
    )


def _rss(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def test_links_in_the_instance_directory_show_nothing_of_the_control_plane(
    world: dict[str, Any],
) -> None:
    taskmanager = world["taskmanager"]
    paths = _paths(world)
    log, data = paths["log"], paths["data"]
    # A task manager that reads /dev/zero to its end fails this test, not the machine.
    cap = _rss(taskmanager, "VmSize") + 3 * 1024 * MiB
    _cap_address_space(taskmanager, cap)
    Path(f"/proc/{taskmanager}/clear_refs").write_text("5")  # the peak starts from now
    rss_before = _rss(taskmanager, "VmRSS")

    # A restart, with the log a link to the environment of whoever opens it.
    _as_instance_account(
        world,
        f"echo '{BAD_SETTING}' >> {data}/postgresql.auto.conf"
        f" && rm -f {log} && ln -s /proc/self/environ {log}",
    )
    _failed(world, {"restart": {}})
    _assert_nothing_of_the_control_plane(world, "Restart failed")
    _repair(world)

    # A resize: the log, emptied so that all of it would be new, becomes a link to the
    # service key once the server stops for the new settings.
    _as_instance_account(
        world,
        f"echo '{BAD_SETTING}' >> {data}/postgresql.auto.conf && : > {log}"
        f" && (setsid sh -c 'while [ -e {data}/postmaster.pid ]; do sleep 0.05; done;"
        f" ln -sf {paths['key']} {log}' < /dev/null > /dev/null 2>&1 &)",
    )
    _failed(world, {"resize": {"flavorRef": "2"}})
    wait_until(log.is_symlink, 10, "the link is planted")
    _assert_nothing_of_the_control_plane(world, "Change failed")
    _repair(world)

    # A resize, with the host rules a link to a directory of root's: nothing is written
    # there, nothing there changes hands.
    canary = support.shared_tmp_dir("trove-links-canary-")
    try:
        _as_instance_account(
            world,
            f"mv {data}/pg_hba.conf {data}/pg_hba.conf.kept && ln -s {canary} {data}/pg_hba.conf",
        )
        _failed(world, {"resize": {"flavorRef": "2"}})
        _assert_nothing_of_the_control_plane(world, "Change failed")
        assert list(canary.iterdir()) == []
        assert (canary.stat().st_uid, canary.stat().st_mode & 0o7777) == (0, 0o755)
    finally:
        shutil.rmtree(canary)
    _repair(world, put_back=("pg_hba.conf",))

    # A restart, with the log and the server's pid file links to /dev/zero.
    _as_instance_account(
        world,
        f"echo '{BAD_SETTING}' >> {data}/postgresql.auto.conf"
        f" && rm -f {log} && ln -s /dev/zero {log}"
        f" && rm -f {data}/postmaster.pid && ln -s /dev/zero {data}/postmaster.pid",
    )
    started = time.monotonic()
    _failed(world, {"restart": {}})
    _assert_nothing_of_the_control_plane(world, "Restart failed")
    assert time.monotonic() - started < 60

    assert processes.pid_alive(taskmanager)
    peak = _rss(taskmanager, "VmHWM")
    assert peak - rss_before < 64 * MiB, (rss_before, peak)
