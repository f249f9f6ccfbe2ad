"""Backups kept in S3-compatible object storage (a strategy's `s3` backend), through boto3.

Only the control plane holds the bucket's credentials (a 0600 file): a guest makes its
backup in its own repository, and the task manager copies the files out, file by file and
streamed from disk. A restore fetches what it needs into a staging directory when the
repository no longer has it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trove_svc import errors, strategies
from trove_svc.backups import in_repository
from trove_svc.settings import Settings
from trove_svc.store.models import Backup


@dataclass(frozen=True)
class Bucket:
    name: str
    prefix: str
    client: Any


def bucket_for(settings: Settings, backup: Backup) -> Bucket | None:
    """Where the backup's strategy keeps it in S3, or None for the local repository."""
    strategy = strategies.for_instance(backup.project_id, backup.instance_id)
    if strategy is None or strategy.backend != "s3":
        return None
    return open_bucket(settings, str(strategy.container), settings.vhost)


def open_bucket(settings: Settings, name: str, prefix: str) -> Bucket:
    import boto3

    if not settings.s3_endpoint:
        raise errors.Unprocessable("No S3 endpoint is set (TROVE_SVC_S3_ENDPOINT).")
    path = settings.s3_credentials_path
    try:
        if path.stat().st_mode & 0o077:
            raise errors.Unprocessable(
                f"The S3 credentials file {path} is readable by others: make it 0600."
            )
        credentials = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise errors.Unprocessable(f"The S3 credentials file {path} cannot be read.") from exc
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint,
        region_name=settings.s3_region,
        aws_access_key_id=credentials["access_key"],
        aws_secret_access_key=credentials["secret_key"],
    )
    return Bucket(name=name, prefix=prefix, client=client)


def _key(bucket: Bucket, instance_id: str, relative: Path) -> str:
    return f"{bucket.prefix}/{instance_id}/{relative.as_posix()}"


def repository_files(backup: Backup) -> tuple[Path, list[Path]]:
    """(the repository root, the files of it the backup needs), to copy out."""
    location = Path(str(backup.location))
    if in_repository(backup):
        return location, [p for p in location.rglob("*") if p.is_file()]
    root = location.parent
    files = [location]
    binlogs = root / "binlogs"
    if binlogs.is_dir():
        files += [p for p in binlogs.iterdir() if p.is_file()]
    return root, files


def upload(bucket: Bucket, backup: Backup) -> int:
    """Copy the backup's files out (those the bucket has not got yet); returns how many."""
    root, files = repository_files(backup)
    have = _listing(bucket, backup.instance_id)
    sent = 0
    for path in files:
        relative = path.relative_to(root)
        key = _key(bucket, backup.instance_id, relative)
        if have.get(key) == path.stat().st_size and "backup.info" not in path.name:
            continue
        bucket.client.upload_file(str(path), bucket.name, key)
        sent += 1
    return sent


def _listing(bucket: Bucket, instance_id: str) -> dict[str, int]:
    found: dict[str, int] = {}
    pages = bucket.client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket.name, Prefix=f"{bucket.prefix}/{instance_id}/"
    )
    for page in pages:
        for item in page.get("Contents", []):
            found[str(item["Key"])] = int(item["Size"])
    return found


def fetch(bucket: Bucket, backup: Backup, staging: Path) -> Path:
    """Bring the backup's repository (or file) back into `staging`; returns its new
    location there."""
    prefix = f"{bucket.prefix}/{backup.instance_id}/"
    root = staging / backup.instance_id
    for key in _listing(bucket, backup.instance_id):
        target = root / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        bucket.client.download_file(bucket.name, key, str(target))
    location = Path(str(backup.location))
    if in_repository(backup):
        return root
    return root / location.name


def remove(bucket: Bucket, backup: Backup, last: bool) -> None:
    """Remove the backup's objects: a file, or a pgBackRest set's; with the last backup of
    an instance that is gone, everything kept for that instance."""
    prefix = f"{bucket.prefix}/{backup.instance_id}/"
    if last:
        doomed = list(_listing(bucket, backup.instance_id))
    elif in_repository(backup):
        doomed = [
            key for key in _listing(bucket, backup.instance_id)
            if key.startswith(prefix + "backup/") and f"/{backup.label}/" in key
        ]  # fmt: skip
    else:
        doomed = [_key(bucket, backup.instance_id, Path(Path(str(backup.location)).name))]
    for key in doomed:
        bucket.client.delete_object(Bucket=bucket.name, Key=key)
