"""Ansible strategy plugin: mitogen's linear strategy, at a path of trove-svc's own.

Mitogen keeps one interpreter per host instead of one per task. Its plugin lies inside the
virtual environment, below its Python's version; the task manager's runs and the molecule
scenarios name this directory instead (ANSIBLE_STRATEGY_PLUGINS).
"""

from __future__ import annotations

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
