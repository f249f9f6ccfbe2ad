"""A PostgreSQL warm pool end to end, over real RabbitMQ, ansible-runner and PostgreSQL:
creates faster than the pool refills each succeed (a claimed warm instance or a cold
build), no warm instance goes to two creates, the pool returns to its size, tenants never
see it, and a pool sized 0 has its instances and their accounts removed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import support
from trove_svc.bus.broker import guest_user

pytestmark = pytest.mark.integration

PROJECT = "warm"
PASSWORD = "Pw-5d1e77b0-known-to-the-test"
POOL = "postgresql:15:1"
SIZE = 2
CREATES = 3


@pytest.fixture(scope="module")
def pooled() -> Iterator[support.Service]:
    service = support.Service(extra_env={"TROVE_SVC_WARM_POOL": f"{POOL}={SIZE}"})
    service.start()
    yield service
    service.cleanup()


def _warm(service: support.Service, admin: str) -> dict[str, dict[str, Any]]:
    """The pool's instances as the operator sees them (/mgmt), by id."""
    listed = service.request("GET", f"/v1.0/{PROJECT}/mgmt/instances?limit=1000", admin)
    assert listed.status == 200, listed.body
    return {i["id"]: i for i in listed.body["instances"] if "warm_pool" in i}


def _wait_for_pool(
    service: support.Service, admin: str, size: int, timeout: float = 240
) -> dict[str, dict[str, Any]]:
    """Wait until the pool holds `size` built warm instances and nothing else of its own."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        warm = _warm(service, admin)
        if len(warm) == size and all(i["status"] == "WARM" for i in warm.values()):
            return warm
        assert not [i for i in warm.values() if i["status"] == "ERROR"], warm
        time.sleep(0.5)
    raise AssertionError(f"the pool never held {size}: {warm}\n" + service.log_path.read_text())


def _os_accounts(service: support.Service) -> list[str]:
    """The instances' OS accounts of this deployment (their home is under its state dir)."""
    accounts = []
    for line in Path("/etc/passwd").read_text().splitlines():
        name, *_, home, _shell = line.split(":")
        if home.startswith(str(service.state_dir)):
            accounts.append(name)
    return accounts


def test_creates_faster_than_the_pool_refills_each_get_an_instance_of_their_own(
    pooled: support.Service,
) -> None:
    admin = pooled.token("ops", admin=True)
    token = pooled.token(PROJECT)
    warm = _wait_for_pool(pooled, admin, SIZE)
    # Warm instances are no tenant's: not listed, not counted.
    listed = pooled.request("GET", f"/v1.0/{PROJECT}/instances", token)
    assert listed.body["instances"] == []
    for warm_id in warm:
        assert pooled.request("GET", f"/v1.0/{PROJECT}/instances/{warm_id}", token).status == 404

    spec = {
        "databases": [{"name": "orders"}],
        "users": [{"name": "shop", "password": PASSWORD, "databases": [{"name": "orders"}]}],
    }
    started = time.monotonic()
    made = [pooled.create(token, PROJECT, f"orders-{n}", **spec) for n in range(CREATES)]
    ready = [
        pooled.wait_for(token, PROJECT, i, support.active_and_healthy, timeout=300) for i in made
    ]
    took = time.monotonic() - started
    assert len(set(made)) == CREATES  # no instance went to two creates
    claimed = [i for i in made if i in warm]
    assert claimed, "no create took a warm instance"
    assert len(claimed) <= SIZE

    for instance in ready:
        with psycopg.connect(
            host=instance["ip"][0],
            port=instance["port"],
            user="shop",
            password=PASSWORD,
            dbname="orders",
            autocommit=True,
            connect_timeout=10,
        ) as conn:
            conn.execute("CREATE TABLE item (id int PRIMARY KEY)")
            assert conn.execute("SELECT current_database()").fetchone() == ("orders",)
    # The claimed create's audit trail shows its own steps.
    trail = pooled.request("GET", f"/v1.0/{PROJECT}/instances/{claimed[0]}/tasks", token)
    assert trail.status == 200, trail.body
    creates = [t for t in trail.body["tasks"] if t["action"] == "create"]
    assert [t["state"] for t in creates] == ["SUCCEEDED"], trail.body

    # The pool is back to its size, with instances none of the creates got.
    refilled = _wait_for_pool(pooled, admin, SIZE)
    assert not set(refilled) & set(made)
    # A warm instance has no broker account until a create claims it, then one of its own.
    assert not [i for i in refilled if support.broker_user_exists(pooled, guest_user(i))]
    assert all(support.broker_user_exists(pooled, guest_user(i)) for i in claimed)
    assert len(_os_accounts(pooled)) == CREATES + SIZE
    print(f"{CREATES} creates ACTIVE+HEALTHY in {took:.1f} s, {len(claimed)} warm")

    for instance_id in made:
        pooled.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance_id}", token)
    for instance_id in made:
        pooled.wait_gone(token, PROJECT, instance_id, timeout=120)


def test_a_pool_sized_0_removes_its_instances_and_their_accounts(
    pooled: support.Service,
) -> None:
    admin = pooled.token("ops", admin=True)
    warm = _wait_for_pool(pooled, admin, SIZE)
    pooled.stop()
    pooled.extra_env["TROVE_SVC_WARM_POOL"] = f"{POOL}=0"
    pooled.start()
    _wait_for_pool(pooled, admin, 0, timeout=120)
    assert _os_accounts(pooled) == []
    for warm_id in warm:
        assert not (pooled.settings().instances_dir / warm_id).exists()
        assert not support.broker_user_exists(pooled, guest_user(warm_id))
