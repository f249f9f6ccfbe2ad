"""Ansible strategy plugin: mitogen's linear strategy, at a path of trove-svc's own.

Mitogen keeps one interpreter per host instead of one per task. Its plugin lies inside the
virtual environment, below its Python's version; the task manager's runs and the molecule
scenarios name this directory instead (ANSIBLE_STRATEGY_PLUGINS).

One change to it: the installed collections are listed once per play, in the controller.
Mitogen's planner lists them for every task that runs a collection's module (the
community.postgresql and community.mysql tasks of the roles), in the worker process Ansible
forks for that task, whose memory of the list goes with it: each listing reads every
installed collection's metadata, about 0.06 s of a core per task here.
"""

from __future__ import annotations

from typing import Any

import ansible.collections.list
import ansible_mitogen.planner
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


class StrategyModule(MitogenLinear):  # type: ignore[misc]
    def run(self, iterator: Any, play_context: Any, result: int = 0) -> Any:
        # In the controller, before the play's tasks fork their workers.
        list_collections_once()
        return super().run(iterator, play_context, result)
