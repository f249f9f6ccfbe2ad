"""Who asks: the project a request acts in, and the context carried with its messages."""

from __future__ import annotations

from dataclasses import dataclass

from trove_wire.envelope import Context


@dataclass(frozen=True)
class Caller:
    project_id: str
    context: Context
