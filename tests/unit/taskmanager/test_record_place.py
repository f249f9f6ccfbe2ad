"""What a provider reports of a new server is recorded only as an address and a server id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import rows
from trove_svc.domain import catalog
from trove_svc.store.db import open_store
from trove_svc.store.models import Instance
from trove_svc.taskmanager.flows import _record_place
from trove_svc.taskmanager.runner import RunResult


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults(catalog.host_datastores())
    yield rows.instance(
        name="n",
        project_id="p",
        status="BUILD",
        port=24000,
        provider="openstack",
        provisioned=False,
    )
    database.close()


def reported(place: dict[str, Any]) -> RunResult:
    return RunResult("successful", 0, "/x", reported={"trove_place": place})


def test_an_address_and_a_server_id_are_recorded(instance: Instance) -> None:
    _record_place(instance.id, reported({"address": "192.0.2.7", "server": "5f1c-9a"}))
    row = Instance.get_by_id(instance.id)
    assert (row.host, row.server) == ("192.0.2.7", "5f1c-9a")


@pytest.mark.parametrize(
    "place",
    [
        {"address": "{{ lookup('pipe', 'id') }}", "server": "../../etc"},
        {"address": "host.example -o ProxyCommand=x", "server": "a b"},
        {"address": ["192.0.2.7"], "server": {"id": "x"}},
    ],
)
def test_anything_else_is_not(instance: Instance, place: dict[str, Any]) -> None:
    _record_place(instance.id, reported(place))
    row = Instance.get_by_id(instance.id)
    assert (row.host, row.server) == (None, None)
