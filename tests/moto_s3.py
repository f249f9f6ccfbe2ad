"""A local S3-compatible server for tests (moto's), and a deployment's credentials for it."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests import support

ACCESS = {"access_key": "testing", "secret_key": "testing"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running() -> Iterator[str]:
    """A server, answering at the endpoint yielded until the block ends."""
    port = _free_port()
    server = subprocess.Popen(
        [str(support.VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def give_credentials(state_dir: Path) -> None:
    """The deployment's S3 credentials (its state directory's s3.json, as an operator
    writes it)."""
    credentials = state_dir / "s3.json"
    credentials.write_text(json.dumps(ACCESS))
    credentials.chmod(0o600)


def client(endpoint: str) -> Any:
    """A boto3 client of the server, with a bucket `trove-backups` made."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS["access_key"],
        aws_secret_access_key=ACCESS["secret_key"],
    )
    s3.create_bucket(Bucket="trove-backups")
    return s3
