"""Who asks: the project a request acts in, and the context carried with its messages."""

from __future__ import annotations

from dataclasses import dataclass

from trove_wire.envelope import Context


@dataclass(frozen=True)
class Caller:
    """`project_id` is the project acted in: the caller's own, or, for an admin acting on
    another project's resource, that resource's. `context` says who asks: their own
    project and user, which the audit trail records."""

    project_id: str
    context: Context
