"""The S3 credentials are taken only from a file no one else can read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trove_svc import errors
from trove_svc.settings import Settings
from trove_svc.taskmanager import object_store


def test_credentials_readable_by_others_are_refused(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, s3_endpoint="http://127.0.0.1:1")
    settings.s3_credentials_path.write_text(json.dumps({"access_key": "a", "secret_key": "b"}))
    settings.s3_credentials_path.chmod(0o644)
    with pytest.raises(errors.Unprocessable, match="readable by others: make it 0600"):
        object_store.open_bucket(settings, "bucket", "prefix")
    settings.s3_credentials_path.chmod(0o600)
    assert object_store.open_bucket(settings, "bucket", "prefix").name == "bucket"
