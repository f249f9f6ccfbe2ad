"""The datastore roles write a tenant's configuration values into the engine's own file
format: quoted so the engine reads back exactly what was given (template markup too), or
refused where the format cannot hold them. Each file is read back by the engine's own
parser (`postgres -C`, `my_print_defaults`, a Redis server's CONFIG GET)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests import support
from trove_svc.process.settings import PROJECT_ROOT, Settings
from trove_svc.taskmanager.runner import PlaybookRunner, RunResult
from trove_wire import datastores

pytestmark = pytest.mark.integration

TRICKY = "a'b\\c \"d\" #e {{ lookup('pipe', 'touch MARKER') }} {% raw %}"
PLAYBOOK = """
- name: Write a configuration group's values
  hosts: all
  gather_facts: false
  tasks:
    - name: The role's configuration entry point
      ansible.builtin.include_role:
        name: "{{ datastore }}"
        tasks_from: configuration
"""
POSTGRES = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))


def write_values(tmp_path: Path, datastore: str, values: dict[str, Any]) -> RunResult:
    """Run the role's configuration step through the product's runner (its boundary)."""
    ansible_dir = tmp_path / "ansible"
    (ansible_dir / "playbooks").mkdir(parents=True, exist_ok=True)
    (ansible_dir / "playbooks" / "configure.yml").write_text(PLAYBOOK)
    shutil.copy(PROJECT_ROOT / "ansible.cfg", ansible_dir / "ansible.cfg")
    if not (ansible_dir / "roles").exists():
        (ansible_dir / "roles").symlink_to(PROJECT_ROOT / "roles")
    base = tmp_path / datastore
    base.mkdir(exist_ok=True)
    shutil.chown(base, "nobody")
    return PlaybookRunner(Settings(state_dir=tmp_path / "state", ansible_dir=ansible_dir)).run(
        ident=f"{datastore}-{time.monotonic_ns()}",
        playbook="configure.yml",
        instance_id="i-1",
        extravars={
            "datastore": datastore,
            **datastores.get(datastore).role_vars(
                {
                    "base_dir": str(base),
                    "data_dir": str(base),
                    "os_user": "nobody",
                    "configuration": values,
                }
            ),
        },
        secrets={},
        connection={"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    )


def test_postgresql_reads_back_the_value_given(tmp_path: Path) -> None:
    result = write_values(tmp_path, "postgresql", {"application_name": TRICKY})
    assert result.ok, result.describe_failure()
    # The server's account must reach its files: pytest's tmp_path is root's alone.
    data_dir = support.shared_tmp_dir("trove-role-quoting-")
    try:
        shutil.copy(tmp_path / "postgresql" / "trove-configuration.conf", data_dir)
        (data_dir / "postgresql.conf").write_text("include = 'trove-configuration.conf'\n")
        for path in data_dir.iterdir():
            shutil.chown(path, "nobody")
        postgres = [str(POSTGRES[-1]), "-D", str(data_dir), "-C", "application_name"]
        read = subprocess.run(
            ["runuser", "-u", "nobody", "--", *postgres],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        shutil.rmtree(data_dir)
    assert read.stdout.rstrip("\n") == TRICKY
    assert not list(tmp_path.rglob("MARKER"))


def test_redis_reads_back_the_value_given(tmp_path: Path) -> None:
    result = write_values(tmp_path, "redis", {"masteruser": TRICKY})
    assert result.ok, result.describe_failure()
    port = support.free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            str(tmp_path / "redis" / "configuration.conf"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                assert client.config_get("masteruser")["masteruser"] == TRICKY
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_mariadb_reads_back_the_value_given(tmp_path: Path) -> None:
    plain = "STRICT_ALL_TABLES,ANSI #{{ x }} {% raw %}"
    result = write_values(tmp_path, "mariadb", {"sql_mode": plain})
    assert result.ok, result.describe_failure()
    read = subprocess.run(
        [
            "my_print_defaults",
            f"--defaults-file={tmp_path / 'mariadb' / 'configuration.cnf'}",
            "mariadbd",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert read.stdout.splitlines() == [f"--sql_mode={plain}"]


@pytest.mark.parametrize(
    ("datastore", "name", "value"),
    [
        ("postgresql", "application_name", "a\nshared_preload_libraries = 'x'"),
        ("redis", "masteruser", "a\nrequirepass x"),
        ("mariadb", "sql_mode", "STRICT_ALL_TABLES\ninit_file = /etc/shadow"),
        ("mariadb", "sql_mode", 'ANSI" init_file="/etc/shadow'),
        ("mariadb", "sql_mode", "ANSI\\"),
        ("postgresql", "bad name = 'x'\nother", "1"),
    ],
)
def test_a_value_the_format_cannot_hold_is_refused(
    tmp_path: Path, datastore: str, name: str, value: str
) -> None:
    result = write_values(tmp_path, datastore, {name: value})
    assert not result.ok
    assert result.failed_step and "Check the configuration group" in result.failed_step
    assert not list((tmp_path / datastore).glob("*configuration.c*"))
