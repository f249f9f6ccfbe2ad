"""The strategy the task manager's runs use: mitogen's, listing the collections once and
sending its own sources whole."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import ansible.collections.list
import ansible_mitogen.planner
import mitogen.master
import mitogen.minify
import pytest

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
