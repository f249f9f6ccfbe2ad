"""The strategy the task manager's runs use: mitogen's, listing the collections once and
sending its own sources whole."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ansible_mitogen.module_finder
import ansible_mitogen.planner
import ansible_mitogen.process
import ansible_mitogen.services
import mitogen.core
import mitogen.master
import mitogen.minify
import pytest
from ansible.plugins.loader import PluginLoader, filter_loader, test_loader

from trove_svc.process.settings import Settings
from trove_svc.taskmanager.runner import PlaybookRunner, shares_python
from trove_svc.taskmanager.strategy_plugins import mitogen_linear


def _collection(root: Path, namespace: str, name: str, marker: str = "MANIFEST.json") -> str:
    directory = root / "ansible_collections" / namespace / name
    directory.mkdir(parents=True)
    if marker:
        (directory / marker).write_text("{}")
    return str(directory)


def test_collections_are_found_by_their_directories_the_first_of_each_name(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    postgresql = _collection(first, "community", "postgresql")
    _collection(second, "community", "postgresql")  # hidden by the first root's
    mysql = _collection(second, "community", "mysql", marker="galaxy.yml")
    _collection(second, "community", "half_copied", marker="")  # no metadata: not one
    (second / "ansible_collections" / "README").write_text("not a namespace")
    found = mitogen_linear.installed_collection_directories([str(first), str(second)])
    assert sorted(found) == sorted([postgresql, mysql])
    assert mitogen_linear.installed_collection_directories([str(tmp_path / "none")]) == ()


def test_the_collections_found_are_those_ansible_lists() -> None:
    """Against Ansible's own listing (Galaxy's code, which imports every collection), in a
    process of its own with Ansible's collection loader set up as ansible-playbook does."""
    listing = (
        "import sys\n"
        "from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder\n"
        "from ansible.collections.list import list_collection_dirs\n"
        "_AnsibleCollectionFinder(paths=[], scan_sys_paths=True)._install()\n"
        "print('\\n'.join(path.decode() for path in list_collection_dirs()))\n"
    )
    listed = subprocess.run(
        [sys.executable, "-c", listing], check=True, capture_output=True, text=True
    ).stdout.split()
    found = mitogen_linear.installed_collection_directories(sys.path)
    assert "community.postgresql" in {".".join(Path(path).parts[-2:]) for path in found}
    assert sorted(found) == sorted(listed)


def test_a_collection_modules_task_is_given_the_collections_listed_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installed = [
        _collection(tmp_path, "community", "postgresql"),
        _collection(tmp_path, "community", "mysql"),
    ]
    listings: list[int] = []
    find = mitogen_linear.installed_collection_directories

    def counted_find(roots: Sequence[str]) -> tuple[str, ...]:
        listings.append(1)
        return find(roots)

    monkeypatch.setattr(mitogen_linear, "installed_collection_directories", counted_find)
    loader_config = SimpleNamespace(collection_paths=[str(tmp_path)])
    monkeypatch.setattr(mitogen_linear, "AnsibleCollectionConfig", loader_config)
    monkeypatch.setattr(
        ansible_mitogen.planner, "_load_collections", ansible_mitogen.planner._load_collections
    )
    mitogen_linear.list_collections_once()
    assert len(listings) == 1

    # Each task's invocation (in its own worker) gets every collection's directory...
    invocations = [SimpleNamespace(_extra_sys_paths=set()) for _ in range(3)]
    for invocation in invocations:
        ansible_mitogen.planner._load_collections(invocation)
    assert all(invocation._extra_sys_paths == set(installed) for invocation in invocations)
    # ...without listing them again.
    assert len(listings) == 1


def test_mitogens_sources_are_sent_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mitogen.minify, "minimize_source", mitogen.minify.minimize_source)
    source = b'"""A module."""\n\n# a comment\nVALUE = 1  # kept\n'
    assert mitogen.minify.minimize_source(source) != source.decode()
    mitogen_linear.send_sources_whole()
    assert mitogen.minify.minimize_source(source) == source.decode()
    # What a new connection is booted with: mitogen's core, docstrings and all.
    core = mitogen.master._get_core_source()
    assert '"""\nThis module implements most package functionality' in core


def _responder() -> Any:
    """The module responder of a new mitogen connection process, set up as it sets it up."""
    router = SimpleNamespace(add_handler=lambda *args, **kwargs: None)
    responder = mitogen.master.ModuleResponder(router, mitogen.core.ImportPolicy())
    ansible_mitogen.process._setup_responder(responder)
    return responder


def test_a_host_sharing_the_controllers_python_imports_ansible_from_its_disk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, service = ansible_mitogen.process, ansible_mitogen.services.ContextService
    monkeypatch.setattr(process, "_setup_responder", process._setup_responder)
    monkeypatch.setattr(service, "ALWAYS_PRELOAD", service.ALWAYS_PRELOAD)
    # Mitogen's way: Ansible and its own Ansible code come from the controller, sent ahead.
    assert _responder().policy.overriden("ansible.module_utils.basic")
    assert "ansible.module_utils.basic" in service.ALWAYS_PRELOAD
    mitogen_linear.import_ansible_from_disk()
    mitogen_linear.import_ansible_from_disk()  # a second play: the one replacement
    policy = _responder().policy
    # A new interpreter is told to take nothing from the controller that it has on disk.
    assert not policy.overrides
    for module in ("ansible.module_utils.basic", "ansible_mitogen.target", "ansible"):
        assert not policy.overriden(module) and not policy.denied(module)
    # Only mitogen's own modules are sent ahead: the interpreter's mitogen is the one it
    # was started with, never its disk's.
    assert service.ALWAYS_PRELOAD
    assert all(name.startswith("mitogen.") for name in service.ALWAYS_PRELOAD)


def test_only_runs_on_this_machine_with_the_controllers_python_import_from_disk(
    tmp_path: Path,
) -> None:
    here = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    assert shares_python(here)
    assert shares_python({**here, "ansible_become": True})
    others = [
        {"ansible_connection": "local", "ansible_python_interpreter": "/usr/bin/python3"},
        {"ansible_connection": "local"},
        {"ansible_connection": "ssh", "ansible_python_interpreter": sys.executable},
        {"ansible_host": "192.0.2.8", "ansible_python_interpreter": sys.executable},
        {
            "ansible_connection": "ssh",
            "ansible_python_interpreter": "{{ trove_python | default('/opt/g/bin/python') }}",
        },
    ]
    assert not any(shares_python(connection) for connection in others)
    runner = PlaybookRunner(Settings(state_dir=tmp_path))
    assert runner.environment(here)[mitogen_linear.SHARED_PYTHON] == "1"
    for connection in others:
        assert mitogen_linear.SHARED_PYTHON not in runner.environment(connection)
    assert mitogen_linear.SHARED_PYTHON not in runner.environment()
    stock = PlaybookRunner(Settings(state_dir=tmp_path, ansible_strategy="linear"))
    assert mitogen_linear.SHARED_PYTHON not in stock.environment(here)


@pytest.fixture
def counted_scans(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Mitogen's scan, counting the scans it makes, wrapped to keep them in a directory."""
    made: list[str] = []
    real_scan = ansible_mitogen.module_finder.scan

    def counted(module_name: str, module_path: str, search_path: Any) -> Any:
        made.append(module_name)
        return real_scan(module_name, module_path, search_path)

    monkeypatch.setattr(ansible_mitogen.module_finder, "scan", counted)
    mitogen_linear.remember_module_scans(str(tmp_path / "scans"))
    return made


def _module_and_utils(tmp_path: Path) -> tuple[str, tuple[str, ...], Path]:
    """A module importing one module_utils module of its own: (module, search path, that
    module_utils module's file)."""
    utils = tmp_path / "module_utils"
    utils.mkdir()
    helper = utils / "helper.py"
    helper.write_text("VALUE = 1\n")
    (utils / "other.py").write_text("OTHER = 2\n")
    module = tmp_path / "mymodule.py"
    module.write_text("from ansible.module_utils.helper import VALUE\n")
    return str(module), (str(utils),), helper


def test_a_modules_scan_is_made_once_and_read_by_the_next_runs(
    counted_scans: list[str], tmp_path: Path
) -> None:
    module, search_path, _ = _module_and_utils(tmp_path)
    first = ansible_mitogen.module_finder.scan("ansible_module_mymodule", module, search_path)
    assert [name for name, _, _ in first] == ["ansible.module_utils.helper"]
    again = ansible_mitogen.module_finder.scan("ansible_module_mymodule", module, search_path)
    assert again == first
    assert counted_scans == ["ansible_module_mymodule"]
    assert len(list((tmp_path / "scans").glob("*.json"))) == 1


def test_a_file_the_scan_read_changed_or_a_damaged_one_is_scanned_again(
    counted_scans: list[str], tmp_path: Path
) -> None:
    module, search_path, helper = _module_and_utils(tmp_path)
    ansible_mitogen.module_finder.scan("ansible_module_mymodule", module, search_path)
    # A module_utils module the module imports now imports another.
    helper.write_text("from ansible.module_utils.other import OTHER\nVALUE = 1\n")
    changed = ansible_mitogen.module_finder.scan("ansible_module_mymodule", module, search_path)
    assert [name for name, _, _ in changed] == [
        "ansible.module_utils.helper",
        "ansible.module_utils.other",
    ]
    assert len(counted_scans) == 2
    (kept,) = (tmp_path / "scans").glob("*.json")
    kept.write_text('{"files": [')
    assert ansible_mitogen.module_finder.scan("ansible_module_mymodule", module, search_path) == (
        changed
    )
    assert len(counted_scans) == 3


def test_the_task_managers_runs_keep_their_scans_in_the_state_directory(tmp_path: Path) -> None:
    environment = PlaybookRunner(Settings(state_dir=tmp_path)).environment()
    assert environment[mitogen_linear.MODULE_SCANS] == str(tmp_path / "module-scans")
    # The stock strategy keeps none.
    stock = PlaybookRunner(Settings(state_dir=tmp_path, ansible_strategy="linear"))
    assert mitogen_linear.MODULE_SCANS not in stock.environment()


def test_a_second_play_of_the_run_keeps_the_one_wrapper(
    counted_scans: list[str], tmp_path: Path
) -> None:
    wrapper = ansible_mitogen.module_finder.scan
    mitogen_linear.remember_module_scans(str(tmp_path / "scans"))
    assert ansible_mitogen.module_finder.scan is wrapper


def test_a_scan_that_cannot_be_kept_is_still_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ansible_mitogen.module_finder, "scan", ansible_mitogen.module_finder.scan)
    not_a_directory = tmp_path / "a-file"
    not_a_directory.write_text("")
    mitogen_linear.remember_module_scans(str(not_a_directory / "scans"))
    module, search_path, _ = _module_and_utils(tmp_path)
    found = ansible_mitogen.module_finder.scan("ansible_module_mymodule", module, search_path)
    assert [name for name, _, _ in found] == ["ansible.module_utils.helper"]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "a-file",
        "module_utils",
        "mymodule.py",
    ]


def test_ansibles_own_filters_and_tests_are_loaded_before_the_workers_fork(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mitogen_linear.load_builtin_jinja_plugins()

    # A worker forked now asks for them: they are there, none looked for again on disk.
    def no_search(*args: Any, **kwargs: Any) -> Iterator[Any]:
        raise AssertionError("the plugins were searched for again")

    monkeypatch.setattr(PluginLoader, "all", no_search)
    filters = {wrapper.ansible_name for wrapper in filter_loader.all()}
    tests = {wrapper.ansible_name for wrapper in test_loader.all()}
    assert {"ansible.builtin.to_json", "ansible.builtin.regex_replace"} <= filters
    assert "ansible.builtin.version" in tests
