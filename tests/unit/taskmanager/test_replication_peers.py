"""Whom a PostgreSQL member of a replication set admits for replication: the other
members, each through its own replication account and from the addresses it connects from
(its own and its host's), and no one else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tests import rows
from tests.unit.taskmanager.fakes import Effects
from trove_svc.store.models import Instance
from trove_svc.taskmanager import provisioning


def _peers(effects: Effects, pool: Path, instance_id: str) -> dict[str, list[str]]:
    """Each peer's addresses, by its account."""
    settings = replace(effects.settings, compute_provider="ssh", host_pool=str(pool))
    given = provisioning.instance_vars(settings, Instance.get_by_id(instance_id))
    return {peer["user"]: peer["addresses"] for peer in given["postgresql_replication_peers"]}


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
    assert _peers(effects, pool, "s-1") == {
        "os_repl_r1": ["192.0.2.6"],
        "os_repl_r2": ["192.0.2.5"],
    }
    assert _peers(effects, pool, "r-1") == {
        "os_repl_s1": ["192.0.2.5", "192.0.2.65"],
        "os_repl_r2": ["192.0.2.5"],
    }
    assert _peers(effects, pool, "alone") == {}


def test_a_member_on_a_host_taken_out_of_the_pool_is_admitted_by_its_own_address(
    effects: Effects, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yml"
    pool.write_text("all:\n  hosts:\n    db1: {ansible_host: 192.0.2.5}\n")
    rows.instance(id="s-1", provider="ssh", server="db1", host="192.0.2.5")
    rows.instance(id="r-1", provider="ssh", server="gone", host="192.0.2.9", replica_of_id="s-1")
    assert _peers(effects, pool, "s-1") == {"os_repl_r1": ["192.0.2.9"]}
