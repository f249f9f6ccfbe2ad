"""Every task of every role carries the tag of its phase, so an operator runs one phase of
a role (`--tags config`) on a host; the phases are one vocabulary for all roles, and each
role's README names the ones it has."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trove_svc.process.settings import PROJECT_ROOT

ROLES_DIR = PROJECT_ROOT / "roles"
ROLES = sorted(path.name for path in ROLES_DIR.iterdir() if (path / "tasks").is_dir())
TASK_FILES = sorted(path.relative_to(ROLES_DIR) for path in ROLES_DIR.glob("*/tasks/*.yml"))
# In the order they run (a build's, then a delete's); `always` marks what every phase needs (the
# variables, the checks of the files a phase touches).
PHASES = (
    "provision",
    "install",
    "init",
    "config",
    "launch",
    "backup",
    "databases",
    "users",
    "stop",
    "teardown",
)
ALWAYS = "always"


def tagged(
    tasks: list[dict[str, Any]], inherited: frozenset[str]
) -> Iterator[tuple[str, frozenset[str]]]:
    """Each task's name and its tags, its own and those of the blocks around it."""
    for task in tasks:
        own = task.get("tags", [])
        tags = inherited | frozenset([own] if isinstance(own, str) else own)
        yield task["name"], tags
        for section in ("block", "rescue", "always"):
            yield from tagged(task.get(section, []), tags)


def tasks_in(relative: Path) -> list[tuple[str, frozenset[str]]]:
    loaded = yaml.safe_load((ROLES_DIR / relative).read_text()) or []
    return list(tagged(loaded, frozenset()))


def role_tags(role: str) -> set[str]:
    return {
        tag
        for relative in TASK_FILES
        if relative.parts[0] == role
        for _, tags in tasks_in(relative)
        for tag in tags
    }


@pytest.mark.parametrize("relative", TASK_FILES, ids=str)
def test_every_task_carries_its_phase(relative: Path) -> None:
    untagged = [name for name, tags in tasks_in(relative) if not tags & {*PHASES, ALWAYS}]
    assert not untagged, f"{relative}: no phase tag on {untagged}"


@pytest.mark.parametrize("relative", TASK_FILES, ids=str)
def test_tags_are_phases(relative: Path) -> None:
    strays = {tag for _, tags in tasks_in(relative) for tag in tags} - {*PHASES, ALWAYS}
    assert not strays, f"{relative}: tags outside the phases: {sorted(strays)}"


@pytest.mark.parametrize("role", ROLES)
def test_readme_names_each_phase_of_the_role(role: str) -> None:
    readme = (ROLES_DIR / role / "README.md").read_text()
    section = re.search(r"^## Tags\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
    assert section, f"roles/{role}/README.md has no '## Tags' section"
    named = set(re.findall(r"`([a-z]+)`", section.group(1)))
    missing = (role_tags(role) - {ALWAYS}) - named
    assert not missing, f"roles/{role}/README.md does not name the phases {sorted(missing)}"


def test_ansible_sees_one_phase_on_every_task_of_every_role(tmp_path: Path) -> None:
    """Ansible's own view of the roles' main entry points (imports resolved, the
    arguments' check added): a phase tag on every task, so `--tags config` picks the
    configuration and leaves the rest."""
    # (A role of other entry points only, backup_copy, is checked file by file above.)
    with_main = [role for role in ROLES if (ROLES_DIR / role / "tasks" / "main.yml").exists()]
    play = [{"hosts": "localhost", "gather_facts": False, "roles": with_main}]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    listed = subprocess.run(
        [
            Path(sys.executable).parent / "ansible-playbook",
            "-i",
            "localhost,",
            "play.yml",
            "--list-tasks",
        ],
        cwd=tmp_path,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(ROLES_DIR)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.findall(r"^\s+(\w+ : .*?)\tTAGS: \[(.*)\]$", listed, re.MULTILINE)
    tags = {name: set(filter(None, listed_tags.split(", "))) for name, listed_tags in found}
    assert {name.split(" : ")[0] for name in tags} == set(with_main)
    assert [name for name, phases in tags.items() if not phases & {*PHASES, ALWAYS}] == []
    assert "config" in tags["postgresql : Write the server's settings"]
    assert "config" not in tags["postgresql : Initialize the cluster"]
    assert "config" not in tags["postgresql : Start PostgreSQL"]
