"""Ansible strategy plugin: mitogen's linear strategy, its Python sent as it is.

Mitogen sends each new context (every run's connection, and its become) its own core and
the modules it needs, and minifies its own first: a tokenizer pass over each, redone in
every `ansible-playbook` run, which costs about 0.15 CPU-s a run (the larger part of what
starting its contexts costs in the run itself) to save bytes on slow links. trove-svc's runs
reach this machine, its pool hosts and its cloud's servers, where those bytes are worth
less than the time; compressed, each module is still sent once per context.
"""

from __future__ import annotations

import inspect
import re

import mitogen.core
import mitogen.master
import mitogen.parent
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule


def _core_source() -> str:
    return inspect.getsource(mitogen.core)


# The core a new context boots from, as it is (mitogen.master puts a minifying one here).
mitogen.parent._get_core_source = _core_source
# A pattern that matches nothing: no module is marked as one to minify.
mitogen.master.ModuleResponder.minify_safe_re = re.compile(b"(?!)")

__all__ = ["StrategyModule"]
