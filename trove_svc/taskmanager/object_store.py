"""Backups kept in S3-compatible object storage (a strategy's `s3` backend), through boto3.

Only the control plane holds the bucket's credentials (a 0600 file): a guest makes its
backup in its own repository, and the task manager copies the files out, file by file and
streamed from disk, never through a link. A restore fetches what it needs into a staging
directory when the repository no longer has it. Keys follow from the instance's and the
backup's ids.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from trove_datastores.base import plain_id
from trove_svc.domain import backups, errors, strategies
from trove_svc.domain.backups import in_repository
from trove_svc.process.settings import Settings
from trove_svc.store.models import Backup
from trove_wire.checksums import open_below, regular_files

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bucket:
    name: str
    prefix: str
    client: Any


def bucket_for(settings: Settings, backup: Backup) -> Bucket | None:
    """Where the backup's strategy keeps it in S3, or None for the local repository."""
    name = strategies.bucket_of(backup.project_id, backup.instance_id)
    if name is None:
        return None
    return open_bucket(settings, name, settings.vhost)


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


def _instance_prefix(bucket: Bucket, instance_id: str) -> str:
    """Where an instance's backups are in the bucket: the deployment's prefix, then the
    instance's id (as its repository is in the backups directory)."""
    return f"{bucket.prefix}/{plain_id(instance_id)}/"


def _key(bucket: Bucket, instance_id: str, relative: PurePosixPath) -> str:
    return _instance_prefix(bucket, instance_id) + relative.as_posix()


def repository_files(repository: Path, backup: Backup) -> list[PurePosixPath]:
    """The files of the repository (relative to it) the backup needs, to copy out: all of
    a tool's repository; or the backup's own file and the binary logs archived beside it.
    Links there are not the backup's (pgBackRest's `latest`, or what the instance's
    account put there): they are passed over, and nothing is read through one."""
    if in_repository(backup):
        return regular_files(repository, skip_links=True)
    files = [PurePosixPath(backups.location_in(repository, backup).name)]
    binlogs = repository / "binlogs"
    if os.path.lexists(binlogs) and not os.path.islink(binlogs):
        files += [PurePosixPath("binlogs") / p for p in regular_files(binlogs, skip_links=True)]
    return files


def upload(bucket: Bucket, repository: Path, backup: Backup) -> int:
    """Copy the backup's files out of its instance's repository (those the bucket has not
    got yet); returns how many."""
    have = _listing(bucket, backup.instance_id)
    sent = 0
    for relative in repository_files(repository, backup):
        key = _key(bucket, backup.instance_id, relative)
        with open_below(repository, relative) as handle:
            size = os.fstat(handle.fileno()).st_size
            if have.get(key) == size and "backup.info" not in relative.name:
                continue
            bucket.client.upload_fileobj(handle, bucket.name, key)
        sent += 1
    return sent


def _listing(bucket: Bucket, instance_id: str) -> dict[str, int]:
    found: dict[str, int] = {}
    pages = bucket.client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket.name, Prefix=_instance_prefix(bucket, instance_id)
    )
    for page in pages:
        for item in page.get("Contents", []):
            found[str(item["Key"])] = int(item["Size"])
    return found


def _plain_relative(key: str, prefix: str) -> PurePosixPath | None:
    """The key's path below the instance's prefix, if every part of it is a plain name
    (no absolute path, no `..`): a bucket others write to cannot aim outside staging."""
    parts = key.removeprefix(prefix).split("/")
    if not key.startswith(prefix) or any(part in ("", ".", "..") for part in parts):
        return None
    return PurePosixPath(*parts)


def fetch(bucket: Bucket, backup: Backup, staging: Path) -> Path:
    """Bring the backup's instance's repository back into `staging` (a directory of the
    control plane's own, new for this restore); returns the copy's root."""
    prefix = _instance_prefix(bucket, backup.instance_id)
    root = staging / plain_id(backup.instance_id)
    for key in _listing(bucket, backup.instance_id):
        relative = _plain_relative(key, prefix)
        if relative is None:
            LOG.warning("not fetched: a key of backup %s's bucket is not a plain path", backup.id)
            continue
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        bucket.client.download_file(bucket.name, key, str(target))
    return root


def remove(bucket: Bucket, backup: Backup, last: bool) -> None:
    """Remove the backup's objects: a file, or a pgBackRest set's; with the last backup of
    an instance that is gone, everything kept for that instance. The keys follow from the
    backup's ids (and a set's checked label)."""
    if last:
        doomed = list(_listing(bucket, backup.instance_id))
    elif in_repository(backup):
        set_prefix = _key(bucket, backup.instance_id, backups.path_in_repository(backup)) + "/"
        doomed = [key for key in _listing(bucket, backup.instance_id) if key.startswith(set_prefix)]
    else:
        doomed = [_key(bucket, backup.instance_id, backups.path_in_repository(backup))]
    for key in doomed:
        bucket.client.delete_object(Bucket=bucket.name, Key=key)
