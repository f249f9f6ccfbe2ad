"""Backups in S3: the credentials are taken only from a file no one else can read; keys
follow from the instance's and the backup's ids; nothing is uploaded through a link, and
nothing fetched lands outside the restore's staging directory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from trove_svc.domain import errors
from trove_svc.process.settings import Settings
from trove_svc.store.models import Backup
from trove_svc.taskmanager import object_store


def test_credentials_readable_by_others_are_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, s3_endpoint="http://127.0.0.1:1")
    settings.s3_credentials_path.write_text(json.dumps({"access_key": "a", "secret_key": "b"}))
    settings.s3_credentials_path.chmod(0o644)
    with pytest.raises(errors.Unprocessable, match="readable by others: make it 0600"):
        object_store.open_bucket(settings, "bucket", "prefix")
    settings.s3_credentials_path.chmod(0o600)
    assert object_store.open_bucket(settings, "bucket", "prefix").name == "bucket"


@pytest.fixture
def bucket(tmp_path: Path) -> Iterator[object_store.Bucket]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="trove-backups")
        yield object_store.Bucket(name="trove-backups", prefix="deployment", client=client)


def _keys(bucket: object_store.Bucket) -> list[str]:
    listed = bucket.client.list_objects_v2(Bucket=bucket.name).get("Contents", [])
    return sorted(str(item["Key"]) for item in listed)


def _file_backup(repository: Path, forged_location: str) -> Backup:
    repository.mkdir(parents=True)
    (repository / "b-1.xbstream.zst").write_bytes(b"backup")
    (repository / "binlogs").mkdir()
    (repository / "binlogs" / "mariadb-bin.000001").write_bytes(b"log")
    return Backup(
        id="b-1",
        instance_id="i-1",
        datastore="mariadb",
        label="lsn:1",
        location=forged_location,
        details={},
    )


def test_uploads_take_the_backups_files_by_derived_keys_and_no_link(
    bucket: object_store.Bucket, tmp_path: Path
) -> None:
    secret = tmp_path / "service.key"
    secret.write_text("the deployment's")
    repository = tmp_path / "backups" / "i-1"
    backup = _file_backup(repository, forged_location=str(secret))
    (repository / "binlogs" / "mariadb-bin.000002").symlink_to(secret)
    assert object_store.upload(bucket, repository, backup) == 2
    assert _keys(bucket) == [
        "deployment/i-1/b-1.xbstream.zst",
        "deployment/i-1/binlogs/mariadb-bin.000001",
    ]


def test_a_set_is_uploaded_without_its_links(bucket: object_store.Bucket, tmp_path: Path) -> None:
    secret = tmp_path / "service.key"
    secret.write_text("the deployment's")
    repository = tmp_path / "backups" / "i-1"
    backup_set = repository / "backup" / "trove" / "20261126-214130F"
    backup_set.mkdir(parents=True)
    (backup_set / "backup.manifest").write_text("manifest")
    (repository / "backup" / "trove" / "latest").symlink_to("20261126-214130F")
    (repository / "archive").symlink_to(secret.parent)
    backup = Backup(
        id="b-1",
        instance_id="i-1",
        datastore="postgresql",
        label="20261126-214130F",
        location="/",
        details={},
    )
    object_store.upload(bucket, repository, backup)
    assert _keys(bucket) == ["deployment/i-1/backup/trove/20261126-214130F/backup.manifest"]


def test_a_fetch_writes_only_below_its_staging_directory(
    bucket: object_store.Bucket, tmp_path: Path
) -> None:
    backup = _file_backup(tmp_path / "backups" / "i-1", forged_location="/")
    object_store.upload(bucket, tmp_path / "backups" / "i-1", backup)
    for escaping in ("deployment/i-1/../../../escaped", "deployment/i-1//etc/escaped"):
        bucket.client.put_object(Bucket=bucket.name, Key=escaping, Body=b"x")
    staging = tmp_path / "staging" / "t-1"
    staging.mkdir(parents=True)
    root = object_store.fetch(bucket, backup, staging)
    assert root == staging / "i-1"
    assert (root / "b-1.xbstream.zst").read_bytes() == b"backup"
    assert [p for p in tmp_path.rglob("escaped")] == []


def test_removes_take_the_objects_the_backups_ids_name(
    bucket: object_store.Bucket, tmp_path: Path
) -> None:
    backup = _file_backup(tmp_path / "backups" / "i-1", forged_location="deployment/i-2/x")
    object_store.upload(bucket, tmp_path / "backups" / "i-1", backup)
    bucket.client.put_object(Bucket=bucket.name, Key="deployment/i-2/x", Body=b"x")
    object_store.remove(bucket, backup, last=False)
    assert _keys(bucket) == ["deployment/i-1/binlogs/mariadb-bin.000001", "deployment/i-2/x"]
    forged = Backup(id="b-2", instance_id="i-2", datastore="postgresql", label="x/../..")
    with pytest.raises(ValueError, match="label"):
        object_store.remove(bucket, forged, last=False)
    assert "deployment/i-2/x" in _keys(bucket)
