"""Which broker account a running part uses: the deployment's own, else the URL's."""

from __future__ import annotations

from pathlib import Path

import pytest

from trove_svc.bus.broker import Account, save_account
from trove_svc.process.components import Runtime
from trove_svc.process.settings import Settings
from trove_svc.security import keys


def _settings(tmp_path: Path, transport_url: str) -> Settings:
    settings = Settings(state_dir=tmp_path, transport_url=transport_url)
    keys.create_service_key(settings.service_key_path)
    return settings


def test_an_account_the_url_names_also_makes_the_guests_accounts(tmp_path: Path) -> None:
    runtime = Runtime.load(_settings(tmp_path, "amqp://trove:p%40ss@rabbit.example:5672/"))
    assert runtime.account == Account("trove", "p@ss")
    assert runtime.url == "amqp://trove:p%40ss@rabbit.example:5672/%2F"


def test_the_account_setup_made_wins_for_the_management_api(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "amqp://trove:pw@rabbit.example:5672/")
    save_account(settings.credentials_path, Account("trove-svc-made", "generated"))
    assert Runtime.load(settings).account == Account("trove-svc-made", "generated")


def test_without_any_account_setup_is_asked_for(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="run `trove-svc setup`"):
        Runtime.load(_settings(tmp_path, "amqp://rabbit.example:5672/"))
