"""The one boundary where values enter an Ansible run: its variables and its secrets.

Both are written to 0600 YAML files whose whole document carries Ansible's `!unsafe` tag,
so no string in it (keys included, at any depth) is ever evaluated as a template: a
tenant's password reading `{{ lookup('pipe', ...) }}` stays those characters, wherever a
role puts it. Nothing reaches `ansible-playbook`'s command line but the paths of these
files, so no value is in `/proc/*/cmdline` for other accounts to read.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from trove_svc.security import private_files

UNSAFE_TAG = "!unsafe"


class _Dumper(yaml.SafeDumper):
    """Strings always quoted, so each loads back as the string it was ("123", "true" and
    "*" included: Ansible re-reads a plain scalar under `!unsafe` as a number, a boolean,
    or an alias)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # each value written out in full, no anchors to follow


def _quoted(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


def _sequence(dumper: yaml.SafeDumper, value: tuple[Any, ...]) -> yaml.SequenceNode:
    return dumper.represent_list(value)


_Dumper.add_representer(str, _quoted)
_Dumper.add_representer(tuple, _sequence)


def dump(values: Mapping[str, Any]) -> str:
    """`values` as a YAML document that Ansible loads with every string in it unsafe."""
    document = _Dumper(io.StringIO(), sort_keys=True).represent_data(dict(values))
    # Ansible's `!unsafe` on a mapping marks everything constructed beneath it.
    document.tag = UNSAFE_TAG
    return yaml.serialize(document, Dumper=_Dumper, allow_unicode=True)


def write_unsafe(path: Path, values: Mapping[str, Any]) -> None:
    """Write `values` for Ansible, every string marked unsafe, to a private file."""
    private_files.write(path, dump(values))
