"""Whom a PostgreSQL member of a replication set admits for replication: the other
members, by the addresses they connect from (each one's own and its host's), and no one
else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests import rows
from tests.unit.taskmanager.fakes import Effects
from trove_svc.store.models import Instance
from trove_svc.taskmanager import provisioning


def _peers(effects: Effects, pool: Path, instance_id: str) -> list[str]:
    settings = replace(effects.settings, compute_provider="ssh", host_pool=str(pool))
    given = provisioning.instance_vars(settings, Instance.get_by_id(instance_id))
    peers: list[str] = given["postgresql_replication_peers"]
    return peers


def test_each_member_admits_the_others_by_their_own_and_their_hosts_addresses(
    effects: Effects, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yml"
    pool.write_text(
        "all:\n  hosts:\n"
        "    db1: {ansible_host: 192.0.2.5, trove_addresses: 192.0.2.64/30}\n"
        "    db2: {ansible_host: 192.0.2.6}\n"
        "    db3: {ansible_host: 192.0.2.7}\n"
    )
    rows.instance(id="s-1", provider="ssh", server="db1", host="192.0.2.65")
    rows.instance(id="r-1", provider="ssh", server="db2", host="192.0.2.6", replica_of_id="s-1")
    # Not built yet: its own address is not given, its host's is known.
    rows.instance(id="r-2", provider="ssh", server="db1", replica_of_id="s-1")
    rows.instance(id="alone", provider="ssh", server="db3", host="192.0.2.7")
    assert _peers(effects, pool, "s-1") == ["192.0.2.5", "192.0.2.6"]
    assert _peers(effects, pool, "r-1") == ["192.0.2.5", "192.0.2.65"]
    assert _peers(effects, pool, "r-2") == ["192.0.2.5", "192.0.2.6", "192.0.2.65"]
    assert _peers(effects, pool, "alone") == []
