"""Each datastore role's README example, run as written with plain ansible-playbook.

No trove-svc process, setting or playbook is involved: the example runs from an empty
directory with only the roles on the path, as an ops team would run it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pymysql
import pytest
import redis

from tests import support

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {"ADMIN": "Example-admin-pw-1", "APP": "Example-app-pw-2"}


def _example(role: str) -> str:
    text = (ROOT / "roles" / role / "README.md").read_text()
    match = re.search(r"```yaml\n(.*?)```", text, re.S)
    assert match, f"roles/{role}/README.md has no example"
    return match.group(1)


def _run(playbook: str, tmp_path: Path, env_names: dict[str, str]) -> None:
    path = tmp_path / "site.yml"
    path.write_text(playbook)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TROVE_SVC_", "ANSIBLE_"))}
    env.update(
        PATH=f"{support.VENV_BIN}{os.pathsep}{env['PATH']}",
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        # The examples say become: true; as root, su needs no password (no sudo here).
        ANSIBLE_BECOME_METHOD="su",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        **{name: PASSWORDS[kind] for name, kind in env_names.items()},
    )
    out = subprocess.run(
        [str(support.VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def _tear_down(tmp_path: Path, role: str, base_dir: str, account: str) -> None:
    playbook = f"""
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - ansible.builtin.include_role:
        name: {role}
        tasks_from: stop.yml
      vars:
        {role}_base_dir: {base_dir}
        {role}_os_user: {account}
        {role}_run_as_os_user: true
"""
    _run(playbook, tmp_path, {})
    shutil.rmtree(base_dir, ignore_errors=True)
    subprocess.run(["userdel", account], check=False, capture_output=True)


def _postgresql_round_trip() -> object:
    with psycopg.connect(
        host="127.0.0.1",
        port=25433,
        user="orders_app",
        password=PASSWORDS["APP"],
        dbname="orders",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TABLE t (v int)")
        conn.execute("INSERT INTO t VALUES (7)")
        return conn.execute("SELECT v FROM t").fetchone()


def _mariadb_round_trip() -> object:
    conn = pymysql.connect(
        host="127.0.0.1",
        port=23307,
        user="shop_app",
        password=PASSWORDS["APP"],
        database="shop",
        autocommit=True,
    )
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE t (v int)")
        cursor.execute("INSERT INTO t VALUES (7)")
        cursor.execute("SELECT v FROM t")
        row = cursor.fetchone()
    conn.close()
    return row


def _redis_round_trip() -> object:
    client = redis.Redis(
        host="127.0.0.1", port=26380, username="sessions_app", password=PASSWORDS["APP"]
    )
    client.set("v", 7)
    return (int(client.get("v") or 0),)


CASES: dict[str, tuple[dict[str, str], str, str, Callable[[], object]]] = {
    "postgresql": (
        {"ORDERS_ADMIN_PASSWORD": "ADMIN", "ORDERS_APP_PASSWORD": "APP"},
        "/srv/datastores/pg-orders",
        "pg-orders",
        _postgresql_round_trip,
    ),
    "mariadb": (
        {"SHOP_ADMIN_PASSWORD": "ADMIN", "SHOP_APP_PASSWORD": "APP"},
        "/srv/datastores/mariadb-shop",
        "mariadb-shop",
        _mariadb_round_trip,
    ),
    "redis": (
        {"SESSIONS_ADMIN_PASSWORD": "ADMIN", "SESSIONS_APP_PASSWORD": "APP"},
        "/srv/datastores/redis-sessions",
        "redis-sessions",
        _redis_round_trip,
    ),
}


@pytest.mark.parametrize("role", sorted(CASES))
def test_readme_example_runs_unchanged(role: str, tmp_path: Path) -> None:
    env_names, base_dir, account, round_trip = CASES[role]
    try:
        _run(_example(role), tmp_path, env_names)
        assert round_trip() == (7,)
    finally:
        _tear_down(tmp_path, role, base_dir, account)
