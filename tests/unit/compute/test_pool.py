"""The host pool is the operator's own Ansible inventory, read as Ansible reads it."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from trove_svc.compute import pool
from trove_svc.domain import errors

INI = """
[databases]
db1 ansible_host=10.0.0.11 trove_memory_mb=4096
db2 ansible_host=10.0.0.12 ansible_port=2222 trove_instances_dir=/srv/trove/instances
db2 trove_addresses=10.0.5.0/24 trove_address_interface=eth1

[databases:vars]
ansible_user=deploy
ansible_become=true
ansible_ssh_private_key_file=/etc/trove-svc/pool_key
"""


def test_an_ini_inventory_with_group_vars(tmp_path: Path) -> None:
    path = tmp_path / "pool.ini"
    path.write_text(INI)
    db1, db2 = pool.hosts(str(path))
    assert (db1.name, db1.address, db1.ssh_port, db1.memory_mb, db1.disk_gb) == (
        "db1",
        "10.0.0.11",
        22,
        4096,
        None,
    )
    assert db1.instances_dir == pool.DEFAULT_INSTANCES_DIR
    assert (db2.ssh_port, db2.instances_dir) == (2222, "/srv/trove/instances")
    assert db2.guest_agent_dir == "/srv/trove/guest-agent"
    # Instances on db2 each take an address of their own, added on eth1; on db1 they share
    # its address.
    assert (db2.addresses, db2.address_interface) == (ipaddress.IPv4Network("10.0.5.0/24"), "eth1")
    assert (db1.addresses, db1.address_interface) == (None, "lo")
    # What a run needs to reach the host, and nothing Ansible adds by itself.
    assert db2.connection == {
        "ansible_host": "10.0.0.12",
        "ansible_port": 2222,
        "ansible_user": "deploy",
        "ansible_become": "true",  # as INI group vars are: Ansible converts it
        "ansible_ssh_private_key_file": "/etc/trove-svc/pool_key",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    assert pool.host(str(path), "db2") == db2
    with pytest.raises(errors.Conflict, match="no longer in the host pool"):
        pool.host(str(path), "db3")


def test_a_pool_that_cannot_be_used_says_why(tmp_path: Path) -> None:
    with pytest.raises(errors.ServiceUnavailable, match="cannot be read"):
        pool.hosts(str(tmp_path / "missing.yml"))
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    db1: {trove_memory_mb: lots}\n")
    with pytest.raises(errors.ServiceUnavailable, match="trove_memory_mb='lots' for db1"):
        pool.hosts(str(bad))
    bad.write_text("all:\n  hosts:\n    db1: {trove_addresses: 10.0.5.1/24}\n")
    with pytest.raises(
        errors.ServiceUnavailable, match=r"trove_addresses='10\.0\.5\.1/24' for db1"
    ):
        pool.hosts(str(bad))
    bad.write_text("all:\n  hosts:\n    db1: {trove_address_interface: 'lo; reboot'}\n")
    with pytest.raises(errors.ServiceUnavailable, match="not a network interface"):
        pool.hosts(str(bad))


def test_a_pool_with_passwords_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pool.yml"
    path.write_text("all:\n  hosts:\n    db1: {ansible_become_password: hunter2hunter2}\n")
    with pytest.raises(errors.ServiceUnavailable, match="db1 a password") as refused:
        pool.hosts(str(path))
    assert "hunter2" not in refused.value.message
