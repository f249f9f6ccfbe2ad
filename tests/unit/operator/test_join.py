"""A node joins a deployment with the join file another node wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from trove_svc.bus.broker import Account, load_account, save_account
from trove_svc.domain import errors
from trove_svc.operator import join
from trove_svc.process.settings import Settings
from trove_svc.security.keys import create_service_key

STORE = "postgresql://trove:pw@db.example/trove"
# Nodes of a shared deployment keep instances on other hosts (and so may have a state
# directory as long as pytest's).
POOL = {"TROVE_SVC_COMPUTE_PROVIDER": "ssh", "TROVE_SVC_HOST_POOL": "/etc/trove-svc/pool.yml"}


def _first_node(state_dir: Path, database_url: str = STORE) -> Settings:
    settings = Settings.from_env(
        {
            "TROVE_SVC_STATE_DIR": str(state_dir),
            "TROVE_SVC_DATABASE_URL": database_url,
            "TROVE_SVC_TRANSPORT_URL": "amqp://r1:5672,r2:5672/",
            **POOL,
        }
    )
    create_service_key(settings.service_key_path)
    save_account(settings.credentials_path, Account("trove-svc-x", "secret"))
    return settings


def test_a_joined_node_has_the_first_ones_key_account_vhost_and_store(tmp_path: Path) -> None:
    first = _first_node(tmp_path / "a")
    join_file = tmp_path / "join.json"
    join.export(first, join_file)
    assert join_file.stat().st_mode & 0o777 == 0o600

    second_env = {"TROVE_SVC_STATE_DIR": str(tmp_path / "b"), **POOL}
    join.adopt(Settings.from_env(second_env), join_file)
    second = Settings.from_env(second_env)
    assert second.service_key_path.read_text() == first.service_key_path.read_text()
    assert load_account(second.credentials_path) == Account("trove-svc-x", "secret")
    assert second.vhost == first.vhost  # not the one its own state directory would give
    assert second.effective_database_url == STORE
    assert second.transport_url == first.transport_url
    for kept in (second.service_key_path, second.credentials_path, tmp_path / "b/joined.json"):
        assert kept.stat().st_mode & 0o777 == 0o600
    # Joining again with the same file changes nothing.
    join.adopt(second, join_file)
    assert Settings.from_env(second_env) == second


def test_a_node_of_another_deployment_is_not_overwritten(tmp_path: Path) -> None:
    join_file = tmp_path / "join.json"
    join.export(_first_node(tmp_path / "a"), join_file)
    other = _first_node(tmp_path / "b")
    with pytest.raises(errors.BadRequest, match="another service key"):
        join.adopt(other, join_file)


def test_a_node_with_a_store_of_its_own_cannot_be_joined(tmp_path: Path) -> None:
    with pytest.raises(errors.BadRequest, match="share the store"):
        join.export(_first_node(tmp_path / "a", database_url=""), tmp_path / "join.json")
    assert not (tmp_path / "join.json").exists()
