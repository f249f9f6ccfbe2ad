"""Ansible strategy plugin: mitogen's linear strategy, at a path of trove-svc's own.

Mitogen keeps one interpreter per host instead of one per task. Its plugin lies inside the
virtual environment, below its Python's version; the task manager's runs and the molecule
scenarios name this directory instead (ANSIBLE_STRATEGY_PLUGINS).

Five changes to it:

- The installed collections are listed once per play, in the controller, from their
  directories alone. Mitogen's planner lists them with Ansible's Galaxy code for every task
  that runs a collection's module (the community.postgresql and community.mysql tasks of
  the roles), in the worker process Ansible forks for that task, whose memory of the list
  goes with it: each such listing imports every installed collection and reads its
  metadata, about 0.06 s of a core here, where a look at the directories takes a
  millisecond.
- Ansible's own Jinja filters and tests are loaded in the controller before the first
  task. Otherwise each task's worker, forked from the controller, loads and wraps all of
  them again the first time it templates a filter or a test, and its work goes with it:
  a worker costs about 8% less CPU here (about 32 ms instead of 34).
- Mitogen's own modules are sent to the host as they are. Mitogen strips their comments and
  docstrings before sending them, to send less; with a new connection process per run, it
  does so in every run, about 0.1 s of a core, for some hundred kilobytes on a network
  that carries gigabytes of backups.
- Where the task manager's runs say so (`MODULE_SCANS`), what mitogen's scan of a module
  finds it imports from module_utils is kept on disk and read by the next runs, as long
  as none of the files it read changed: mitogen scans each module a run uses once per run
  (compiling it and what it imports), about 0.03 s of a core per module.
- Where the task manager's runs say their host is this machine, reached with the
  controller's own Python (`SHARED_PYTHON`), that interpreter imports Ansible and
  mitogen's Ansible code from its own disk. Mitogen sends them from the controller by
  default, so that every host runs the controller's version, and each run's new
  interpreter compiled them anew: about 0.15 s of a core per run here, and 0.2-0.45 s of
  the run's first step. On this machine the files on disk are the controller's own,
  compiled once.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import ansible_mitogen.module_finder
import ansible_mitogen.planner
import ansible_mitogen.process
import ansible_mitogen.services
import mitogen.core
import mitogen.minify
from ansible.plugins.loader import filter_loader, test_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as MitogenLinear

__all__ = ["StrategyModule"]

# The environment variable naming the directory where module scans are kept (unset: none
# is kept).
MODULE_SCANS = "TROVE_SVC_MODULE_SCANS"

# The environment variable saying that the run's hosts are this machine, reached with the
# controller's own Python (unset: they may be other hosts, or another Python).
SHARED_PYTHON = "TROVE_SVC_SHARED_PYTHON"

# What mitogen's scan of a module returns: (name, path, is a package) of each module_utils
# module it imports, directly or through another.
Scan = list[tuple[str, str, bool]]


def installed_collection_directories(roots: Sequence[str]) -> tuple[str, ...]:
    """The directory of each collection installed below `roots` (each a directory that may
    hold `ansible_collections`), the first found of each name, as Ansible's collection
    loader searches them; a collection is a directory with a MANIFEST.json or a galaxy.yml."""
    found: dict[tuple[str, str], str] = {}
    for root in roots:
        pattern = os.path.join(glob.escape(root), "ansible_collections", "*", "*", "")
        for directory in sorted(glob.glob(pattern)):
            collection = os.path.normpath(directory)
            namespace, name = collection.split(os.sep)[-2:]
            if (namespace, name) not in found and any(
                os.path.isfile(os.path.join(collection, marker))
                for marker in ("MANIFEST.json", "galaxy.yml")
            ):
                found[namespace, name] = collection
    return tuple(found.values())


def list_collections_once() -> None:
    """Replace the planner's per-task listing of collection directories by one made now."""
    if not hasattr(ansible_mitogen.planner, "_load_collections"):
        return  # a mitogen that no longer lists them per task
    directories = installed_collection_directories(AnsibleCollectionConfig.collection_paths)

    def add_collection_paths(invocation: Any) -> None:
        invocation._extra_sys_paths.update(directories)

    ansible_mitogen.planner._load_collections = add_collection_paths


def load_builtin_jinja_plugins() -> None:
    """Load Ansible's own filters and tests in the controller, before its tasks fork their
    workers: each worker finds them loaded instead of loading every one of them again."""
    for loader in (filter_loader, test_loader):
        for _ in loader.all():
            pass


def send_sources_whole() -> None:
    """Replace the minifier of mitogen's sources by their text as it is."""
    if not hasattr(mitogen.minify, "minimize_source"):
        return  # a mitogen that no longer minifies

    def whole(source: str | bytes) -> str:
        return str(mitogen.core.to_text(source))

    mitogen.minify.minimize_source = whole


def import_ansible_from_disk() -> None:
    """Let the run's interpreters import what they find on their own disk: mitogen's
    connection process no longer makes them take Ansible and mitogen's Ansible code from it
    (its import overrides), nor sends those ahead of their first task. Mitogen's own
    modules still come from it (an interpreter's mitogen is the one it was started with)."""
    setup: Callable[[Any], None] = ansible_mitogen.process._setup_responder
    if getattr(setup, "imports_from_disk", False):
        return  # replaced already (an earlier play of the run)

    def setup_without_overrides(responder: Any) -> None:
        setup(responder)
        responder.policy.overrides.clear()

    setup_without_overrides.imports_from_disk = True  # type: ignore[attr-defined]
    ansible_mitogen.process._setup_responder = setup_without_overrides
    service = ansible_mitogen.services.ContextService
    service.ALWAYS_PRELOAD = tuple(
        name for name in service.ALWAYS_PRELOAD if name.startswith("mitogen.")
    )


def remember_module_scans(directory: str) -> None:
    """Wrap mitogen's module scan: a scan kept in `directory` whose files are unchanged is
    read instead of made again; one made is kept there."""
    scan: Callable[[str, str, Sequence[str]], Scan] = ansible_mitogen.module_finder.scan
    if getattr(scan, "kept_in", None) == directory:
        return  # wrapped already (an earlier play of the run)

    def remembered(module_name: str, module_path: str, search_path: Sequence[str]) -> Scan:
        key = json.dumps([module_name, module_path, list(search_path)])
        kept = os.path.join(directory, hashlib.sha256(key.encode()).hexdigest() + ".json")
        found = _read_scan(kept)
        if found is not None:
            return found
        result = scan(module_name, module_path, search_path)
        _keep_scan(kept, [module_path, *(path for _, path, _ in result)], result)
        return result

    remembered.kept_in = directory  # type: ignore[attr-defined]
    ansible_mitogen.module_finder.scan = remembered


def _file_state(path: str) -> list[Any]:
    state = os.stat(path)
    return [path, state.st_mtime_ns, state.st_size]


def _read_scan(kept: str) -> Scan | None:
    """The scan kept in `kept`, or None: none kept, or a file it read changed since."""
    try:
        with open(kept, encoding="utf-8") as file:
            content = json.load(file)
        if any(_file_state(state[0]) != state for state in content["files"]):
            return None
        return [(str(name), str(path), bool(package)) for name, path, package in content["scan"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def _keep_scan(kept: str, files: list[str], scan: Scan) -> None:
    """Write the scan and the state of the files it read, whole or not at all (another run
    may read it meanwhile). A scan that cannot be kept is made again next time."""
    directory = os.path.dirname(kept)
    try:
        content = {"files": [_file_state(path) for path in files], "scan": scan}
        os.makedirs(directory, mode=0o700, exist_ok=True)
        file = tempfile.NamedTemporaryFile(
            "w", dir=directory, prefix=".", suffix=".json", delete=False, encoding="utf-8"
        )
    except OSError:
        return
    try:
        with file:
            json.dump(content, file)
        os.replace(file.name, kept)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(file.name)


class StrategyModule(MitogenLinear):  # type: ignore[misc]
    def run(self, iterator: Any, play_context: Any, result: int = 0) -> Any:
        # In the controller, before the play's tasks fork their workers and mitogen its
        # connection process.
        list_collections_once()
        load_builtin_jinja_plugins()
        send_sources_whole()
        if os.environ.get(MODULE_SCANS):
            remember_module_scans(os.environ[MODULE_SCANS])
        if os.environ.get(SHARED_PYTHON):
            import_ansible_from_disk()
        return super().run(iterator, play_context, result)
