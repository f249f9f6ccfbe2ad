"""Ansible strategy plugin: mitogen's linear strategy, at a path of trove-svc's own.

Mitogen keeps one interpreter per host instead of one per task. Its plugin lies inside the
virtual environment, below its Python's version; the task manager's runs and the molecule
scenarios name this directory instead (ANSIBLE_STRATEGY_PLUGINS).

One change to it: the installed collections are listed once per play, in the controller.
Mitogen's planner lists them for every task that runs a collection's module (the
community.postgresql and community.mysql tasks of the roles), in the worker process Ansible
forks for that task, whose memory of the list goes with it: each listing reads every
installed collection's metadata, about 0.06 s of a core per task here.

And mitogen sends the interpreters it starts the source it reads, as it is: it would strip
the comments and docstrings of its own modules (with Python's tokenizer) to send fewer
bytes, and, on this machine (a local connection), scan the byte code of every module it
sends for the modules it imports, to send those ahead of their request. Both cost more
than they save here: about 0.13 s of a core per run, of the 1 s a run costs at least.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import ansible.collections.list
import ansible_mitogen.planner
import ansible_mitogen.process
import mitogen.core
import mitogen.parent
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as MitogenLinear

__all__ = ["StrategyModule"]


def list_collections_once() -> None:
    """Replace the planner's per-task listing of collection directories by one made now."""
    if not hasattr(ansible_mitogen.planner, "_load_collections"):
        return  # a mitogen that no longer lists them per task
    directories = tuple(
        path.decode("utf-8") for path in ansible.collections.list.list_collection_dirs()
    )

    def add_collection_paths(invocation: Any) -> None:
        invocation._extra_sys_paths.update(directories)

    ansible_mitogen.planner._load_collections = add_collection_paths


# mitogen's own set-up of the responder that serves modules to its interpreters.
_SET_UP_RESPONDER = ansible_mitogen.process._setup_responder
# Matches no source: mitogen minifies only the modules this marks as safe to.
_NO_SOURCE = re.compile(rb"(?!)")


def send_sources_unchanged(local_only: bool) -> None:
    """Have the connection multiplexer, started after this, send sources as they are; on
    `local_only` runs, each module at its request rather than with those it imports."""
    if hasattr(mitogen.parent, "_get_core_source"):
        mitogen.parent._get_core_source = lambda: inspect.getsource(mitogen.core)

    def set_up_responder(responder: Any) -> None:
        _SET_UP_RESPONDER(responder)
        responder.minify_safe_re = _NO_SOURCE
        if local_only:
            responder._finder.find_related = lambda fullname: []

    ansible_mitogen.process._setup_responder = set_up_responder


def _local_only(inventory: Any) -> bool:
    hosts = inventory.get_hosts()
    return bool(hosts) and all(host.vars.get("ansible_connection") == "local" for host in hosts)


class StrategyModule(MitogenLinear):  # type: ignore[misc]
    def run(self, iterator: Any, play_context: Any, result: int = 0) -> Any:
        # In the controller, before the play's tasks fork their workers and mitogen its
        # multiplexer.
        list_collections_once()
        send_sources_unchanged(_local_only(self._inventory))
        return super().run(iterator, play_context, result)
