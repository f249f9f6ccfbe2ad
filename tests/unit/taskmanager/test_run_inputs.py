"""Values enter an Ansible run at one boundary, every string in them marked unsafe.

Ansible loads a run's variables (`-e @env/extravars`) and its secrets file
(`include_vars`) as trusted templates unless a string carries `!unsafe`: these tests load
what the boundary writes exactly as Ansible does and find no string a template would
evaluate, for every variable every playbook is given, and run a real playbook with
template markup in its variables.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import is_trusted_as_template

from tests.unit.roles.test_role_variables import (
    DATASTORES,
    PLAYBOOKS,
    POOL,
    PROVIDERS,
    given,
    instances,
)
from trove_svc.process.settings import PROJECT_ROOT, Settings
from trove_svc.store.models import Instance
from trove_svc.taskmanager import run_inputs
from trove_svc.taskmanager.runner import PlaybookRunner

__all__ = ["instances"]  # the fixture, shared with the role-variable contract

MARKUP = "{{ lookup('pipe', 'touch MARKER') }}{% if true %}x{% endif %}"


def strings_in(value: Any) -> Iterator[Any]:
    """Every string in `value`, mapping keys included, as loaded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def evaluable(strings: Iterator[Any]) -> list[Any]:
    """The strings a template would evaluate (an empty one holds none)."""
    return [s for s in strings if s and is_trusted_as_template(s)]


def load_as_ansible_does(path: Path) -> Any:
    """As `-e @file` and `include_vars` load a file: templates in it trusted unless marked."""
    return DataLoader().load_from_file(str(path), cache="none", trusted_as_template=True)


def test_every_string_is_marked_unsafe_and_round_trips(tmp_path: Path) -> None:
    values = {
        "password": MARKUP,
        "users": [{"name": MARKUP, "databases": [{"name": "orders"}]}],
        "configuration": {MARKUP: MARKUP, "max_connections": 123, "ratio": 0.5},
        "cidrs": ("10.0.0.0/8",),
        "empty": "",
        "multiline": "a\nb: {{ c }}",
        "flags": [True, False, None],
    }
    path = tmp_path / "vars.yml"
    run_inputs.write_unsafe(path, values)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = load_as_ansible_does(path)
    assert loaded == {**values, "cidrs": ["10.0.0.0/8"]}
    found = list(strings_in(loaded))
    assert MARKUP in found
    assert evaluable(iter(found)) == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("datastore", DATASTORES)
@pytest.mark.parametrize("playbook", sorted(PLAYBOOKS))
def test_every_variable_a_playbook_is_given_is_unsafe(
    instances: dict[str, Instance], playbook: str, datastore: str, provider: str, tmp_path: Path
) -> None:
    pool_file = tmp_path / "pool.yml"
    pool_file.write_text(POOL)
    instance = instances[datastore]
    instance.provider, instance.server = provider, ("h1" if provider == "ssh" else None)
    instance.name = MARKUP
    instance.access = {"is_public": True, "allowed_cidrs": ["192.0.2.0/24"]}
    variables = given(playbook, instance, pool_file)
    path = tmp_path / "extravars"
    run_inputs.write_unsafe(path, variables)
    loaded = load_as_ansible_does(path)
    assert set(loaded) == set(variables)
    trusted = evaluable(strings_in(loaded))
    assert trusted == [], f"{playbook} would evaluate {trusted[:3]}"


PLAYBOOK = """
- name: Echo what the run was given
  hosts: all
  gather_facts: false
  tasks:
    - name: Read the run's secrets
      ansible.builtin.include_vars:
        file: "{{ trove_secrets_file }}"
      no_log: true
    - name: Write what it sees
      ansible.builtin.copy:
        dest: "{{ echo_to }}"
        content: "{{ {'given': given, 'secret': secret, 'line': given.name ~ '!'} | to_json }}"
        mode: "0600"
"""


def test_a_real_run_sees_markup_as_text_and_no_value_is_on_its_command_line(
    tmp_path: Path,
) -> None:
    ansible_dir = tmp_path / "ansible"
    (ansible_dir / "playbooks").mkdir(parents=True)
    (ansible_dir / "playbooks" / "echo.yml").write_text(PLAYBOOK)
    (ansible_dir / "ansible.cfg").write_text((PROJECT_ROOT / "ansible.cfg").read_text())
    (ansible_dir / "roles").mkdir()
    settings = Settings(state_dir=tmp_path / "state", ansible_dir=ansible_dir)
    echo = tmp_path / "echo.json"
    given_value = {"name": MARKUP.replace("MARKER", str(tmp_path / "MARKER")), "port": 24001}
    secret = "{{ lookup('env', 'HOME') }}"
    result = PlaybookRunner(settings).run(
        ident="t-1",
        playbook="echo.yml",
        instance_id="i-1",
        extravars={"given": given_value, "echo_to": str(echo)},
        secrets={"secret": secret},
        connection={"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
    )
    assert result.ok, result.describe_failure()
    assert not (tmp_path / "MARKER").exists()
    seen = json.loads(echo.read_text())
    assert seen == {"given": given_value, "secret": secret, "line": given_value["name"] + "!"}
    command = json.loads((Path(result.artifact_dir) / "command").read_text())["command"]
    assert not [arg for arg in command if MARKUP[:10] in arg or "24001" in arg]
    assert list(settings.secrets_dir.iterdir()) == []  # removed after the run
