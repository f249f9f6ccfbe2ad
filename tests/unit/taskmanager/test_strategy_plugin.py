"""The strategy the task manager's runs use: mitogen's, listing the collections once and
sending its own sources whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ansible.collections.list
import ansible_mitogen.module_finder
import ansible_mitogen.planner
import mitogen.master
import mitogen.minify
import pytest

from trove_svc.process.settings import Settings
from trove_svc.taskmanager.runner import PlaybookRunner
from trove_svc.taskmanager.strategy_plugins import mitogen_linear


def test_a_collection_modules_task_is_given_the_collections_listed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listings: list[int] = []
    installed = [b"/venv/site-packages/ansible_collections/community/postgresql", b"/c/a/b"]

    def counted_listing() -> Iterator[bytes]:
        listings.append(1)
        yield from installed

    monkeypatch.setattr(ansible.collections.list, "list_collection_dirs", counted_listing)
    monkeypatch.setattr(
        ansible_mitogen.planner, "_load_collections", ansible_mitogen.planner._load_collections
    )
    mitogen_linear.list_collections_once()
    assert len(listings) == 1

    # Each task's invocation (in its own worker) gets every collection's directory...
    invocations = [SimpleNamespace(_extra_sys_paths=set()) for _ in range(3)]
    for invocation in invocations:
        ansible_mitogen.planner._load_collections(invocation)
    expected = {path.decode("utf-8") for path in installed}
    assert all(invocation._extra_sys_paths == expected for invocation in invocations)
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
