"""What a datastore's backups are called, shared by the guest (which makes them) and the
control plane (which finds them): a file named from the backup's id, or a set under a
label of its tool's grammar; and of a report's details, only what a restore reads, each of
its shape."""

from __future__ import annotations

from typing import Any

import pytest

from trove_datastores.base import BackupLayout, BackupNaming, plain_id
from trove_wire import datastores

BACKUP_ID = "0d1c7a52-58e5-4b7e-9d55-2f1f0e0c7c11"


def naming(datastore: str) -> BackupNaming:
    return datastores.get(datastore).backup_naming


@pytest.mark.parametrize(
    ("datastore", "label"),
    [
        ("postgresql", "20261126-214130F"),
        ("postgresql", "20261126-214130F_20261127-030000D"),
        ("postgresql", "20261126-214130F_20261127-030000I"),
        ("mariadb", "lsn:1234567"),
        ("redis", BACKUP_ID),
    ],
)
def test_each_tools_own_labels_are_taken(datastore: str, label: str) -> None:
    assert naming(datastore).label_problem(label, BACKUP_ID) is None


@pytest.mark.parametrize(
    ("datastore", "label"),
    [
        ("postgresql", "../.."),
        ("postgresql", "20261126-214130F/../../x"),
        ("postgresql", "20261126-214130F/"),
        ("postgresql", "/etc"),
        ("postgresql", "latest"),
        ("postgresql", "20261126-214130F_20261127-030000X"),
        ("postgresql", None),
        ("mariadb", "lsn:../../x"),
        ("mariadb", "lsn:"),
        ("mariadb", "lsn:123/.."),
        ("mariadb", 123),
        ("redis", "another-backup"),
        ("redis", "../" + BACKUP_ID),
    ],
)
def test_a_label_not_of_the_tools_grammar_is_refused(datastore: str, label: Any) -> None:
    assert naming(datastore).label_problem(label, BACKUP_ID) is not None


def test_a_set_is_found_only_under_a_label_of_the_grammar() -> None:
    postgresql = naming("postgresql")
    assert str(postgresql.set_path("20261126-214130F")) == "backup/trove/20261126-214130F"
    for label in ("..", "../../..", "x/y", ""):
        with pytest.raises(ValueError, match="label"):
            postgresql.set_path(label)


@pytest.mark.parametrize(
    ("datastore", "name"), [("mariadb", ".xbstream.zst"), ("redis", ".tar.zst")]
)
def test_a_single_file_backup_is_named_from_its_id_alone(datastore: str, name: str) -> None:
    assert naming(datastore).file_name(BACKUP_ID) == BACKUP_ID + name
    for not_an_id in ("../x", "/", "a/b", ".", "", "x" * 65):
        with pytest.raises(ValueError, match="not an id"):
            naming(datastore).file_name(not_an_id)


def test_details_keep_only_what_a_restore_reads_each_of_its_shape() -> None:
    mariadb = naming("mariadb")
    sent = {
        "binlog_file": "mariadb-bin.000003",
        "binlog_position": "453",
        "from_lsn": "0",
        "s3": {"bucket": "theirs", "prefix": "other-deployment"},
        "logs_until": 1e12,
        "stanza": "../../..",
    }
    assert mariadb.details_problem(sent) is None
    assert mariadb.restore_details(sent) == {
        "binlog_file": "mariadb-bin.000003",
        "binlog_position": "453",
    }
    assert naming("postgresql").restore_details({"stanza": "../../..", "type": "full"}) == {}
    assert naming("redis").restore_details({"keys": 3}) == {}


@pytest.mark.parametrize(
    "details",
    [
        {"binlog_file": "../../../etc/passwd"},
        {"binlog_file": "/var/lib/mysql/mariadb-bin.000001"},
        {"binlog_file": "mariadb-bin.000003; rm -rf /"},
        {"binlog_position": "-1"},
        {"binlog_position": "4 --exec"},
        {"binlog_position": True},
        {"binlog_position": 4.5},
        {"binlog_file": ["mariadb-bin.000003"]},
        "binlog_file",
    ],
)
def test_details_a_restore_reads_are_refused_out_of_shape(details: Any) -> None:
    assert naming("mariadb").details_problem(details) is not None


def test_an_id_names_one_plain_file() -> None:
    assert plain_id(BACKUP_ID) == BACKUP_ID
    for not_an_id in ("..", "a/b", "-x", "x\x00", "x" * 65):
        with pytest.raises(ValueError, match="not an id"):
            plain_id(not_an_id)


@pytest.mark.parametrize(
    "spec",
    [s for s in datastores.REGISTRY.values() if s.capabilities.backups],
    ids=lambda s: s.name,
)
def test_every_datastore_with_backups_names_them(spec: datastores.DatastoreSpec) -> None:
    """A file per backup has a name from its id; a set in a repository has a label grammar
    and a place for its sets (else the control plane could not find what it checks)."""
    naming = spec.backup_naming
    if spec.capabilities.backup_layout == BackupLayout.FILE:
        assert naming.file_name(BACKUP_ID).startswith(BACKUP_ID)
        assert not naming.sets_dir
    else:
        assert naming.sets_dir and naming.label_pattern is not None
        assert not naming.file_suffix
