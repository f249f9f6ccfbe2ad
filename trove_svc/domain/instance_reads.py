"""Reading instances for the API: one joined query per page or per instance, however many
instances there are, and paged in the query, before anything is rendered."""

from __future__ import annotations

import peewee

from trove_svc.domain import errors
from trove_svc.store.models import Datastore, DatastoreVersion, Instance, ServiceStatus

Row = tuple[Instance, ServiceStatus | None]


def _joined() -> peewee.ModelSelect:
    """Instances with their status, datastore version and datastore (never lazy-loaded)."""
    return (
        Instance.select(Instance, ServiceStatus, DatastoreVersion, Datastore)
        .join(ServiceStatus, peewee.JOIN.LEFT_OUTER)
        .switch(Instance)
        .join(DatastoreVersion)
        .join(Datastore)
    )


def _row(instance: Instance) -> Row:
    return instance, getattr(instance, "servicestatus", None)


def page(project_id: str | None, limit: int, marker: str | None) -> tuple[list[Row], str | None]:
    """Up to `limit` instances after `marker` in listing order (created, then id), and the
    marker of the next page if there is one. `project_id` None: every project's (admin)."""
    scope = Instance.project_id == project_id if project_id is not None else peewee.SQL("1 = 1")
    query = _joined().where(scope)
    if marker is not None:
        before = Instance.alias()
        marked = before.select(before.created_at).where(
            (before.id == marker) & (before.project_id == project_id if project_id else True)
        )
        query = query.where(
            (Instance.created_at > marked)
            | ((Instance.created_at == marked) & (Instance.id > marker))
        )
    rows = list(query.order_by(Instance.created_at, Instance.id).limit(limit + 1))
    if not rows and marker is not None:
        _check_marker(project_id, marker)
    more = len(rows) > limit
    rows = rows[:limit]
    return [_row(r) for r in rows], (rows[-1].id if more else None)


def _check_marker(project_id: str | None, marker: str) -> None:
    found = Instance.select(Instance.id).where(Instance.id == marker)
    if project_id is not None:
        found = found.where(Instance.project_id == project_id)
    if not found.exists():
        raise errors.BadRequest(f"marker {marker[:64]!r} is not in this list.")


def one(instance_id: str, project_id: str | None) -> Row:
    """One instance of the project (`project_id` None: of any project, for the admin)."""
    query = _joined().where(Instance.id == instance_id)
    if project_id is not None:
        query = query.where(Instance.project_id == project_id)
    found = query.first()
    if found is None:
        raise errors.NotFound(f"Instance {instance_id} could not be found.")
    return _row(found)
