"""What a fork server loads once for all its runs (`playbook_server`), and what each run
forked from it does first to be as a new ansible-playbook would be.

Loaded once, under the first run's Ansible settings: Ansible's and mitogen's modules, the
routing tables of the collections the roles use (Ansible's own is a large file every run
reads), Ansible's own Jinja plugins and the inventory plugin with the definitions of their
settings, and every role file as Ansible's DataLoader parses it. Done in each run: the
settings Ansible read as it was imported are read again from the run's environment (a
temporary directory of its own), and the run's DataLoaders start with the parsed role
files that have not changed since.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What the server imports before its first fork: what every run imports before it reads
# its playbook (the rest, the plugins a run loads from their paths, each run loads).
PRELOADED_MODULES = (
    "ansible.cli.playbook",
    "ansible.executor.playbook_executor",
    "ansible.executor.task_executor",
    "ansible.executor.process.worker",
    "ansible.playbook.role_include",
    "ansible.playbook.included_file",
    "ansible.plugins.strategy.linear",
    "ansible.plugins.connection.local",
    "ansible.plugins.callback.default",
    "ansible.template",
    "ansible_mitogen.strategy",
    "ansible_mitogen.connection",
    "ansible_mitogen.mixins",
    "ansible_mitogen.planner",
    "ansible_mitogen.process",
    "ansible_mitogen.services",
    "ansible_mitogen.module_finder",
)

# The roles' files the server parses ahead of the runs (each role's directory of each).
ROLE_FILE_DIRECTORIES = ("tasks", "handlers", "defaults", "vars", "meta")

# The collections whose routing table (meta/runtime.yml) the server parses ahead of the
# runs: Ansible's own, which every run reads, and those the roles' modules come from.
ROUTED_COLLECTIONS = (
    "ansible.builtin",
    "ansible.posix",
    "community.general",
    "community.mysql",
    "community.postgresql",
    "openstack.cloud",
)

# Settings each run has its own of (ansible-runner's per-run fact cache directory): they
# are read again in each run, not compared with the server's.
PER_RUN_SETTINGS = frozenset({"ANSIBLE_CACHE_PLUGIN_CONNECTION"})


def settings_of(env: dict[str, str]) -> dict[str, str]:
    """What in `env` Ansible and Python read once, at import: a run's must equal the
    server's for a fork of the server to run as a fresh ansible-playbook would."""
    return {
        key: value
        for key, value in env.items()
        if key.startswith(("ANSIBLE_", "PYTHON")) and key not in PER_RUN_SETTINGS
    }


# A file's (modification time, size): a parsed file is used while they are unchanged.
FileState = tuple[int, int]


@dataclass(frozen=True)
class Loaded:
    """What the server loaded before its first fork, under its first run's settings."""

    settings: dict[str, str]
    # The roles' files, as Ansible's DataLoader parsed them (by its name for each).
    parsed_files: dict[str, tuple[FileState, Any]]


def load_ansible(env: dict[str, str]) -> Loaded:
    """Import what every run imports and parse what every run parses, under the settings
    of a first run's environment `env`."""
    os.environ.update(env)
    for name in PRELOADED_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _parse_routing_tables()
    _load_plugins()
    return Loaded(
        settings=settings_of(env),
        parsed_files=_parse_role_files(env.get("ANSIBLE_ROLES_PATH", "")),
    )


def _load_plugins() -> None:
    """Load the plugins every run loads from Ansible's own (its Jinja filters and tests, the
    inventory plugin of a run's inventory): their modules, and their settings' definitions,
    which Ansible parses from their documentation."""
    from ansible.plugins.loader import filter_loader, inventory_loader, test_loader

    with contextlib.suppress(Exception):
        for loader in (filter_loader, test_loader):
            for _ in loader.all():
                pass
        inventory_loader.get("yaml", class_only=True)


def _parse_routing_tables() -> None:
    """Parse the routing tables of `ROUTED_COLLECTIONS` now, and give Ansible's collection
    loader, which parses each run's anew, the parsed one of the same text (its documented
    place for a cache)."""
    import yaml
    from ansible.utils.collection_loader import _collection_finder

    parse = _collection_finder._meta_yml_to_dict
    parsed: dict[tuple[Any, bytes], Any] = {}

    def parsed_once(text: bytes | str, content_id: Any) -> Any:
        key = (content_id, text.encode() if isinstance(text, str) else text)
        if key not in parsed:
            parsed[key] = parse(text, content_id)
        return parsed[key]

    _collection_finder._meta_yml_to_dict = parsed_once
    for collection, path in _routing_tables():
        with contextlib.suppress(OSError, ValueError, yaml.YAMLError):
            parsed_once(Path(path).read_bytes(), (collection, "runtime.yml"))


def _routing_tables() -> list[tuple[str, str]]:
    """(collection, the path of its routing table) of each of `ROUTED_COLLECTIONS` found
    where Ansible looks for collections (its setting, then Python's path)."""
    import ansible
    from ansible import constants

    ansible_dir = os.path.dirname(ansible.__file__)
    found = [
        ("ansible.builtin", os.path.join(ansible_dir, "config", "ansible_builtin_runtime.yml"))
    ]
    roots = [*constants.COLLECTIONS_PATHS, *sys.path]
    for collection in ROUTED_COLLECTIONS[1:]:
        for root in roots:
            path = os.path.join(root, "ansible_collections", *collection.split("."))
            if os.path.isfile(os.path.join(path, "MANIFEST.json")):
                found.append((collection, os.path.join(path, "meta", "runtime.yml")))
                break
    return found


def _parse_role_files(roles_path: str) -> dict[str, tuple[FileState, Any]]:
    """Each role file below `roles_path` (Ansible's list of roles directories) as a run's
    DataLoader parses it, with the state of the file it parsed."""
    from ansible.parsing.dataloader import DataLoader

    loader = DataLoader()
    for root in filter(None, roles_path.split(os.pathsep)):
        for directory in ROLE_FILE_DIRECTORIES:
            pattern = os.path.join(glob.escape(root), "*", directory, "**", "*.yml")
            for path in sorted(glob.glob(pattern, recursive=True)):
                with contextlib.suppress(Exception):
                    loader.load_from_file(path, trusted_as_template=True, unsafe=True)
    parsed: dict[str, tuple[FileState, Any]] = {}
    for name, data in loader._FILE_CACHE.items():
        state = _file_state(name)
        if state is not None:
            parsed[name] = (state, data)
    return parsed


def _file_state(path: str) -> FileState | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def prepare_run(loaded: Loaded) -> None:
    """In a run forked from the server, with the run's environment in place: Ansible's
    settings read again, its output as wide as the run's terminal, and the parsed role
    files that have not changed given to its DataLoaders."""
    _read_settings_again()
    _use_parsed_files(loaded.parsed_files)


def _read_settings_again() -> None:
    """Ansible's settings as this run's environment gives them (a temporary directory of
    its own, its fact cache), and its output as wide as this run's terminal."""
    from ansible import constants
    from ansible.utils.display import Display

    for setting in constants.config.get_configuration_definitions():
        constants.set_constant(
            setting, constants.config.get_config_value(setting, variables=vars(constants))
        )
    with contextlib.suppress(Exception):
        Display()._set_column_width()


def _use_parsed_files(parsed_files: dict[str, tuple[FileState, Any]]) -> None:
    """Start every DataLoader of the run with the parsed files that have not changed since
    (a run reads each from there instead of parsing it: the data it is given is a copy)."""
    from ansible.parsing.dataloader import DataLoader

    unchanged = {
        name: data for name, (state, data) in parsed_files.items() if _file_state(name) == state
    }
    start = DataLoader.__init__

    def started_with_parsed_files(self: DataLoader, *args: Any, **kwargs: Any) -> None:
        start(self, *args, **kwargs)
        self._FILE_CACHE.update(unchanged)

    DataLoader.__init__ = started_with_parsed_files
