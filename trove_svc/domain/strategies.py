"""Where backups are kept (Trove's backup strategies): the deployment's local repository,
or an S3-compatible bucket, per project or per instance (the instance's wins)."""

from __future__ import annotations

import uuid

from trove_svc.domain import errors
from trove_svc.store.models import BackupStrategy

# Where backups can be kept (a strategy's backend, a backup's `storage_driver`): every backup
# in the deployment's local repository, and with an S3 strategy a copy in its bucket too.
LOCAL = "local"
S3 = "s3"
BACKENDS = (LOCAL, S3)


def listing(project_id: str, instance_id: str | None = None) -> list[BackupStrategy]:
    query = BackupStrategy.select().where(BackupStrategy.project_id == project_id)
    if instance_id is not None:
        query = query.where(BackupStrategy.instance_id == instance_id)
    return list(query.order_by(BackupStrategy.created_at))


def choose(
    project_id: str, instance_id: str | None, backend: str, container: str | None, now: float
) -> BackupStrategy:
    if backend == S3 and not container:
        raise errors.BadRequest("An S3 strategy names its bucket (swift_container).")
    BackupStrategy.delete().where(
        (BackupStrategy.project_id == project_id) & (BackupStrategy.instance_id == instance_id)
    ).execute()
    return BackupStrategy.create(
        id=str(uuid.uuid4()),
        project_id=project_id,
        instance_id=instance_id,
        backend=backend,
        container=container,
        created_at=now,
    )


def forget(project_id: str, instance_id: str | None) -> None:
    BackupStrategy.delete().where(
        (BackupStrategy.project_id == project_id) & (BackupStrategy.instance_id == instance_id)
    ).execute()


def for_instance(project_id: str, instance_id: str) -> BackupStrategy | None:
    """The strategy that applies: the instance's own, else the project's, else none (local)."""
    found = (
        BackupStrategy.select()
        .where(
            (BackupStrategy.project_id == project_id)
            & ((BackupStrategy.instance_id == instance_id) | BackupStrategy.instance_id.is_null())
        )
        .order_by(BackupStrategy.instance_id.desc(nulls="LAST"))
        .first()
    )
    return found


def bucket_of(project_id: str, instance_id: str) -> str | None:
    """The bucket the instance's backups are copied to, or None (kept locally only)."""
    strategy = for_instance(project_id, instance_id)
    if strategy is None or strategy.backend != S3:
        return None
    return str(strategy.container)


def require_driver(project_id: str, instance_id: str, driver: str | None) -> None:
    """A backup's `storage_driver` (Trove's) names where the instance's strategy keeps its
    backups: `local` always holds them; `s3` only under a strategy with a bucket."""
    if driver == S3 and bucket_of(project_id, instance_id) is None:
        raise errors.BadRequest(
            f"Instance {instance_id}'s backups are kept in the local repository only: "
            "storage_driver s3 needs a backup strategy naming a bucket "
            "(POST backup_strategies with swift_container), or leave storage_driver out."
        )
