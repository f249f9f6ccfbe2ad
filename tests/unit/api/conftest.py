from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import falcon
import falcon.testing
import pytest

from tests import support
from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.security import tokens
from trove_svc.store.db import open_store


@pytest.fixture
def app(tmp_path: Path) -> Iterator[falcon.App[falcon.Request, falcon.Response]]:
    """The API on a real SQLite store; its bus points nowhere (these tests never cast)."""
    settings = Settings(state_dir=tmp_path, max_body_bytes=4096)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    app, _ = support.api_app(settings, "amqp://guest:guest@127.0.0.1:1/%2F")
    yield app
    database.close()


@pytest.fixture
def client(app: falcon.App[falcon.Request, falcon.Response]) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(app)


@pytest.fixture
def token(app: falcon.App[falcon.Request, falcon.Response]) -> str:
    return tokens.issue("p1", "alice", False, now=0.0)
