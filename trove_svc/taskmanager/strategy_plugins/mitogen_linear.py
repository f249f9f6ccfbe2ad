"""Ansible strategy plugin: mitogen's linear strategy, at a path of trove-svc's own.

Mitogen keeps one interpreter per host instead of one per task. Its plugin lies inside the
virtual environment, below its Python's version; the task manager's runs and the molecule
scenarios name this directory instead (ANSIBLE_STRATEGY_PLUGINS).

Two changes to it:

- The installed collections are listed once per play, in the controller. Mitogen's planner
  lists them for every task that runs a collection's module (the community.postgresql and
  community.mysql tasks of the roles), in the worker process Ansible forks for that task,
  whose memory of the list goes with it: each listing reads every installed collection's
  metadata, about 0.06 s of a core per task here.
- Mitogen's own modules are sent to the host as they are. Mitogen strips their comments and
  docstrings before sending them, to send less; with a new connection process per run, it
  does so in every run, about 0.1 s of a core, for some hundred kilobytes on a network
  that carries gigabytes of backups.
"""

from __future__ import annotations

from typing import Any

import ansible.collections.list
import ansible_mitogen.planner
import mitogen.core
import mitogen.minify
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


def send_sources_whole() -> None:
    """Replace the minifier of mitogen's sources by their text as it is."""
    if not hasattr(mitogen.minify, "minimize_source"):
        return  # a mitogen that no longer minifies

    def whole(source: str | bytes) -> str:
        return str(mitogen.core.to_text(source))

    mitogen.minify.minimize_source = whole


class StrategyModule(MitogenLinear):  # type: ignore[misc]
    def run(self, iterator: Any, play_context: Any, result: int = 0) -> Any:
        # In the controller, before the play's tasks fork their workers and mitogen its
        # connection process.
        list_collections_once()
        send_sources_whole()
        return super().run(iterator, play_context, result)
