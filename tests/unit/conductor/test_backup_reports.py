"""The conductor's handling of backup reports, sealed as a guest seals them, against a real
(SQLite) store: a report that is not of the contract's shape is refused, counted with the
other refused messages, and changes nothing; a good one moves its backup on, at the
location the control plane derives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import rows
from trove_svc.conductor.service import Conductor
from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.security.keys import KeyRing, ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import Backup
from trove_wire import seal
from trove_wire.amqp import Delivery
from trove_wire.envelope import Envelope

SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@dataclass
class Guest:
    conductor: Conductor
    settings: Settings
    key: bytes

    def report(self, **args: Any) -> None:
        envelope = Envelope("backup_report", {"backup_id": "b-1", **args}, sent_at=99.0)
        sealed = seal.seal(self.key, seal.report_from("i-1"), envelope.to_json())
        self.conductor.handle("i-1", Delivery(body=sealed))


@pytest.fixture
def guest(tmp_path: Path) -> Iterator[Guest]:
    settings = Settings(state_dir=tmp_path, clock=lambda: 100.0)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("mariadb", "10.11", "/usr/sbin")])
    keys = ServiceKeys(seal.new_key())
    key, sealed = keys.new_instance_key("i-1")
    rows.instance(
        project_id="p",
        status="BACKUP",
        status_since=1.0,
        guest_key=sealed,
        created_at=1,
        updated_at=1,
    )
    Backup.create(
        id="b-1",
        name="b",
        project_id="p",
        instance_id="i-1",
        datastore="mariadb",
        datastore_version="10.11",
        state="BUILDING",
        created_at=1.0,
        updated_at=1.0,
    )
    yield Guest(Conductor(settings, "amqp://127.0.0.1:1/", KeyRing(keys)), settings, key)
    database.close()


def made(**fields: Any) -> dict[str, Any]:
    return {
        "state": "SAVING",
        "label": "lsn:1234",
        "tool": "mariadb-backup based on MariaDB server 10.11.6",
        "size": 1024,
        "checksum": SHA,
        "consistent_at": 99.5,
        "details": {"binlog_file": "mariadb-bin.000003", "binlog_position": "453"},
        **fields,
    }


@pytest.mark.parametrize(
    "forged",
    [
        {"label": "lsn:1/../../.."},
        {"checksum": "0" * 63 + "g"},
        {"size": -4096},
        {"consistent_at": float("nan")},
        {"details": {"binlog_file": "../../../var/lib/trove-svc/trove-svc.db"}},
    ],
)
def test_a_forged_report_is_refused_counted_and_changes_nothing(
    guest: Guest, forged: dict[str, Any]
) -> None:
    guest.report(**made(**forged))
    assert guest.conductor.refused.snapshot() == {"malformed": 1}
    row = Backup.get_by_id("b-1")
    assert (row.state, row.location, row.label, row.details) == ("BUILDING", None, None, {})


def test_a_good_report_lands_at_the_derived_location(guest: Guest) -> None:
    guest.report(**made(location="/", repository=str(guest.settings.state_dir)))
    assert guest.conductor.refused.snapshot() == {}
    row = Backup.get_by_id("b-1")
    assert row.state == "SAVING" and row.label == "lsn:1234"
    assert row.location == str(guest.settings.backups_dir / "i-1" / "b-1.xbstream.zst")
