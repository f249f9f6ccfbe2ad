"""The guest agent installs alone: it never imports the control plane or its libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from trove_wire import datastores

GUEST_DIR = Path(__file__).resolve().parents[3] / "guest"
CONTROL_PLANE_ONLY = (
    "trove_svc",
    "falcon",
    "peewee",
    "ansible",
    "ansible_runner",
    "gunicorn",
    "jinja2",
    "jsonschema",
)


def test_guest_modules_import_without_the_control_plane() -> None:
    probe = (
        "import json, sys\n"
        "import importlib, trove_guest.agent, trove_wire.amqp\n"
        "from trove_wire import datastores\n"
        "for spec in datastores.REGISTRY.values():\n"
        "    for target in (spec.driver, spec.backup_engine):\n"
        "        importlib.import_module(target.split(':')[0])\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    # -I: ignore the environment and the editable installs' path hooks; only guest/ and
    # the interpreter's site-packages (for pika and psycopg) are importable.
    site = [p for p in sys.path if p.endswith("site-packages")]
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path[:0] = {[str(GUEST_DIR), *site]!r}\n{probe}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(out.stdout))
    assert {"trove_guest", "pika", "psycopg", "pymysql", "redis"} <= loaded
    assert loaded.isdisjoint(CONTROL_PLANE_ONLY), loaded & set(CONTROL_PLANE_ONLY)


def test_guest_distribution_declares_only_its_own_dependencies() -> None:
    import tomllib

    project = tomllib.loads((GUEST_DIR / "pyproject.toml").read_text())["project"]
    names = {dep.split(">")[0].split("[")[0].split("=")[0] for dep in project["dependencies"]}
    drivers = {spec.python_driver for spec in datastores.REGISTRY.values()}
    assert names == {"cryptography", "pika", *drivers}
