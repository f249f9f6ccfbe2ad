"""Root on an instance that runs as the service's own account would reach the service's
files (PostgreSQL's COPY ... TO PROGRAM runs as the server's account): it is refused,
saying why, before anything reaches the guest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from tests import rows, support
from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.security import tokens
from trove_svc.store.db import open_store


@pytest.fixture
def client(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[falcon.testing.TestClient]:
    """The API of a deployment whose instances have accounts of their own, or not."""
    settings = Settings(state_dir=tmp_path, instance_accounts=request.param)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    rows.instance(provider="local")
    # The bus points nowhere: a call that reaches for the guest answers 503.
    app, _ = support.api_app(settings, "amqp://guest:guest@127.0.0.1:1/%2F")
    yield falcon.testing.TestClient(app)
    database.close()


@pytest.mark.parametrize(("client", "expected"), [(False, 403), (True, 503)], indirect=["client"])
def test_root_needs_an_account_of_the_instances_own(
    client: falcon.testing.TestClient, expected: int
) -> None:
    token = tokens.issue("p1", "alice", False, now=0.0)
    result = client.simulate_post(
        "/v1.0/p1/instances/i-1/root", json={}, headers={"X-Auth-Token": token}
    )
    assert result.status_code == expected, result.json
    if expected == 403:
        assert "service's own account" in result.json["forbidden"]["message"]
