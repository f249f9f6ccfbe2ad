"""The strategy the task manager's runs use: mitogen's, listing the collections once."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import ansible.collections.list
import ansible_mitogen.planner
import ansible_mitogen.process
import mitogen.core
import mitogen.fork
import mitogen.master
import mitogen.parent
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


def _responder_set_up(monkeypatch: pytest.MonkeyPatch, local_only: bool) -> Any:
    """A mitogen module responder, set up as the multiplexer of a run would set it up."""
    monkeypatch.setattr(
        ansible_mitogen.process, "_setup_responder", ansible_mitogen.process._setup_responder
    )
    monkeypatch.setattr(mitogen.parent, "_get_core_source", mitogen.parent._get_core_source)
    mitogen_linear.send_sources_unchanged(local_only)
    router = SimpleNamespace(add_handler=lambda **handler: None)
    responder = mitogen.master.ModuleResponder(router, mitogen.core.ImportPolicy())
    ansible_mitogen.process._setup_responder(responder)
    return responder


def _sent(responder: Any, fullname: str) -> tuple[str, list[str]]:
    """The source the responder sends for `fullname`, and the modules it sends with it."""
    _name, _present, _path, compressed, related = responder._build_tuple(fullname)
    return zlib.decompress(compressed).decode("utf-8"), related


@pytest.mark.parametrize("local_only", [True, False])
def test_sources_are_sent_as_they_are(monkeypatch: pytest.MonkeyPatch, local_only: bool) -> None:
    responder = _responder_set_up(monkeypatch, local_only)
    # mitogen.fork is marked safe to minify: its docstrings and comments would be gone.
    source, related = _sent(responder, "mitogen.fork")
    assert source == Path(mitogen.fork.__file__).read_text()
    # The modules it imports go ahead of their request only to another host.
    assert (related == []) is local_only
    assert '"""' in mitogen.parent._get_core_source()
