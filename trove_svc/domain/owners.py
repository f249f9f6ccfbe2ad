"""Whose a resource named by id in a path is: the project an admin's request on it acts in,
whatever project the path names (as Trove's admin finds any project's instance by its id)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from trove_svc.store.models import Backup, Configuration, Instance


def _instance_project(instance_id: str) -> str | None:
    """The instance's project; once it is deleted, that of the backups it left."""
    for model, column in ((Instance, Instance.id), (Backup, Backup.instance_id)):
        row = model.select(model.project_id).where(column == instance_id).first()
        if row is not None:
            return str(row.project_id)
    return None


def _backup_project(backup_id: str) -> str | None:
    row = Backup.select(Backup.project_id).where(Backup.id == backup_id).first()
    return str(row.project_id) if row is not None else None


def _configuration_project(configuration_id: str) -> str | None:
    row = (
        Configuration.select(Configuration.project_id)
        .where(Configuration.id == configuration_id)
        .first()
    )
    return str(row.project_id) if row is not None else None


# The path fields that name a resource owned by a project, outermost first: what lies
# under an instance (its users, databases, backups, schedules, tasks) is the instance's.
OWNED: tuple[tuple[str, Callable[[str], str | None]], ...] = (
    ("instance_id", _instance_project),
    ("backup_id", _backup_project),
    ("configuration_id", _configuration_project),
)


def project_of(path_fields: Mapping[str, Any]) -> str | None:
    """The project of the resource the path names by id, or None if it names none, or
    one that does not exist (the request then goes on to answer 404 as it would)."""
    for field, owner in OWNED:
        if field in path_fields:
            return owner(str(path_fields[field]))
    return None
