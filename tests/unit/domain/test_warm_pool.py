"""Warm pools against a real (SQLite) store, the task managers' queue stood in for: a
create claims a warm instance atomically (never one instance for two creates), a pool is
refilled to its size and no further, and a pool sized 0 has its instances removed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.casts import Casts
from trove_svc.conductor import service as conductor_service
from trove_svc.domain import catalog, instance_reads, quotas, status, warm_pool
from trove_svc.domain.instances import InstanceService
from trove_svc.domain.tasks import TaskState
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Flavor, Instance, Task
from trove_wire.envelope import Context
from trove_wire.seal import new_key

CALLER = Caller("p1", Context(project="p1", user="alice"))
POOL = "postgresql:15:1"


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = Settings(state_dir=tmp_path, warm_pool=f"{POOL}=2")
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    yield settings
    database.close()


def _warm(settings: Settings, casts: Casts) -> list[str]:
    """Fill the pools, and let every warm build succeed: the ids of the warm instances."""
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    Instance.update(status=status.WARM).where(Instance.warm_slot.is_null(False)).execute()
    return [row.id for row in Instance.select().where(Instance.status == status.WARM)]


def _version_and_flavor() -> tuple[DatastoreVersion, Flavor]:
    return DatastoreVersion.select().first(), Flavor.get_by_id("1")


def _tenant(name: str) -> dict[Any, Any]:
    return {Instance.name: name, Instance.project_id: "p1"}


def test_a_pool_is_filled_to_its_size_once_and_its_builds_are_the_pools(
    settings: Settings,
) -> None:
    casts = Casts()
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    built = list(Instance.select().order_by(Instance.warm_slot))
    assert [i.warm_slot for i in built] == [f"{POOL}#0", f"{POOL}#1"]
    assert {(i.status, i.project_id, i.guest_key) for i in built} == {
        (status.BUILD, warm_pool.WARM_PROJECT, None)
    }
    started = list(Task.select())
    assert sorted(t.action for t in started) == ["warm", "warm"]
    assert sorted(casts.task_ids) == sorted(t.id for t in started)


def test_a_place_is_filled_once_even_by_two_task_managers_at_once(settings: Settings) -> None:
    casts = Casts()
    version, flavor = _version_and_flavor()
    pool = next(iter(settings.warm_pools))
    for _ in range(2):  # both saw the place empty
        warm_pool._fill(settings, casts, pool, 0, version, flavor)  # type: ignore[arg-type]
    assert Instance.select().count() == 1
    assert len(casts.sent) == 1 and Task.select().count() == 1


def test_a_claim_makes_the_oldest_warm_instance_the_tenants(settings: Settings) -> None:
    first, second = _warm(settings, Casts())
    Instance.update(created_at=0).where(Instance.id == second).execute()
    version, flavor = _version_and_flavor()
    claimed = warm_pool.claim(warm_pool.ready(version, flavor), _tenant("mine"), 7.0)
    assert claimed == second
    instance = Instance.get_by_id(second)
    assert (instance.project_id, instance.name, instance.status, instance.warm_slot) == (
        "p1",
        "mine",
        status.BUILD,
        None,
    )
    assert Instance.get_by_id(first).status == status.WARM


def test_two_creates_that_saw_one_warm_instance_never_both_claim_it(
    settings: Settings,
) -> None:
    settings = settings.with_overrides(warm_pool=f"{POOL}=1")
    (only,) = _warm(settings, Casts())
    version, flavor = _version_and_flavor()
    seen_by_both = warm_pool.ready(version, flavor)
    assert warm_pool.claim(seen_by_both, _tenant("a"), 7.0) == only
    assert warm_pool.claim(seen_by_both, _tenant("b"), 7.0) is None
    assert Instance.get_by_id(only).name == "a"


def test_creates_racing_on_threads_each_claim_a_different_instance_or_none(
    settings: Settings,
) -> None:
    warm = set(_warm(settings, Casts()))
    version, flavor = _version_and_flavor()
    got: list[str | None] = []
    barrier = threading.Barrier(6)

    def create(name: str) -> None:
        seen = warm_pool.ready(version, flavor)
        barrier.wait()
        got.append(warm_pool.claim(seen, _tenant(name), 7.0))

    racers = [threading.Thread(target=create, args=(f"c{n}",)) for n in range(6)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    claimed = [g for g in got if g is not None]
    assert sorted(claimed) == sorted(warm)  # each once, none twice
    assert got.count(None) == 4


def test_no_claim_takes_a_warm_instance_still_building_or_of_another_flavor(
    settings: Settings,
) -> None:
    warm_pool.keep_filled(settings, Casts())  # type: ignore[arg-type]
    version, flavor = _version_and_flavor()
    assert warm_pool.claim(warm_pool.ready(version, flavor), _tenant("x"), 7.0) is None
    Instance.update(status=status.WARM).execute()
    assert warm_pool.ready(version, Flavor.get_by_id("2")) == []


def test_a_claimed_place_is_filled_again(settings: Settings) -> None:
    casts = Casts()
    _warm(settings, casts)
    version, flavor = _version_and_flavor()
    warm_pool.claim(warm_pool.ready(version, flavor), _tenant("x"), 7.0)
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    slots = {i.warm_slot for i in Instance.select().where(Instance.warm_slot.is_null(False))}
    assert slots == {f"{POOL}#0", f"{POOL}#1"}
    assert Instance.select().count() == 3 and len(casts.sent) == 3


@pytest.mark.parametrize("sized", [f"{POOL}=0", "", "redis:7.0:1=1"])
def test_a_pool_sized_0_has_its_instances_deleted(settings: Settings, sized: str) -> None:
    casts = Casts()
    warm = _warm(settings, casts)
    version, flavor = _version_and_flavor()
    claimed = warm_pool.claim(warm_pool.ready(version, flavor), _tenant("kept"), 7.0)
    warm_pool.keep_filled(settings.with_overrides(warm_pool=sized), casts)  # type: ignore[arg-type]
    left = [i for i in warm if i != claimed]
    assert [Instance.get_by_id(i).status for i in left] == [status.SHUTDOWN]
    deletes = Task.select().where(Task.action == "delete")
    assert [t.instance_id for t in deletes] == left
    assert Instance.get_by_id(claimed).status == status.BUILD  # the tenant's stays


def test_a_failed_warm_instance_is_deleted_and_its_place_filled_again(
    settings: Settings,
) -> None:
    casts = Casts()
    first, _ = _warm(settings, casts)
    Instance.update(status=status.ERROR).where(Instance.id == first).execute()
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    assert Instance.get_by_id(first).status == status.SHUTDOWN
    Instance.delete().where(Instance.id == first).execute()  # as its delete does
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    assert Instance.select().where(Instance.warm_slot.is_null(False)).count() == 2


def test_a_create_claims_a_warm_instance_that_no_tenant_saw_before(
    settings: Settings,
) -> None:
    casts = Casts()
    warm = _warm(settings, casts)
    assert instance_reads.page("p1", 20, None)[0] == []
    assert quotas.usage("p1").instances == 0
    service = InstanceService(settings, casts, ServiceKeys(new_key()))  # type: ignore[arg-type]
    body = {"instance": {"name": "orders", "flavorRef": "1", "volume": {"size": 2}}}
    made = service.create(CALLER, body)
    assert made.id in warm and made.guest_key is not None
    assert (made.project_id, made.volume_size, made.status) == ("p1", 2, status.BUILD)
    task = Task.get(Task.instance_id == made.id, Task.action == "create")
    assert task.args["warm"] is True and task.project_id == "p1"
    assert [row[0].id for row in instance_reads.page("p1", 20, None)[0]] == [made.id]
    # Every admin sees the pool's instance left, in no tenant's project.
    admin_view = {row[0].id: row[0].project_id for row in instance_reads.page(None, 20, None)[0]}
    assert admin_view[next(i for i in warm if i != made.id)] == warm_pool.WARM_PROJECT


def test_a_create_whose_pool_is_empty_builds_from_nothing(settings: Settings) -> None:
    casts = Casts()
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]  (still building)
    service = InstanceService(settings, casts, ServiceKeys(new_key()))  # type: ignore[arg-type]
    body = {"instance": {"name": "orders", "flavorRef": "1", "volume": {"size": 1}}}
    made = service.create(CALLER, body)
    assert made.warm_slot is None and made.id not in {
        i.id for i in Instance.select().where(Instance.project_id == warm_pool.WARM_PROJECT)
    }
    task = Task.get(Task.instance_id == made.id)
    assert task.args["warm"] is False


def test_a_claim_whose_cast_is_refused_leaves_the_instance_to_its_pool(
    settings: Settings,
) -> None:
    casts = Casts()
    warm = _warm(settings, casts)
    casts.refuse_after = len(casts.sent)
    service = InstanceService(settings, casts, ServiceKeys(new_key()))  # type: ignore[arg-type]
    body = {"instance": {"name": "orders", "flavorRef": "1", "volume": {"size": 1}}}
    with pytest.raises(Exception, match="unavailable"):
        service.create(CALLER, body)
    assert quotas.usage("p1").instances == 0
    given_up = [i for i in warm if Instance.get_by_id(i).status == status.ERROR]
    assert len(given_up) == 1
    assert Instance.get_by_id(given_up[0]).project_id == warm_pool.WARM_PROJECT


def test_the_conductor_looks_for_a_warm_instances_reports_only_once_it_is_claimed(
    settings: Settings,
) -> None:
    assert len(_warm(settings, Casts())) == 2
    assert conductor_service._instance_ids() == []
    version, flavor = _version_and_flavor()
    claimed = warm_pool.claim(warm_pool.ready(version, flavor), _tenant("x"), 7.0)
    assert conductor_service._instance_ids() == [claimed]


def test_a_pool_the_catalog_has_no_version_of_is_named_and_left_empty(
    settings: Settings,
) -> None:
    casts = Casts()
    unknown = settings.with_overrides(warm_pool=f"{POOL}=1,postgresql:9.6:1=1,redis:7.0:9=1")
    said = warm_pool.keep_filled(unknown, casts)  # type: ignore[arg-type]
    assert [str(pool) for pool in said] == ["postgresql:9.6:1", "redis:7.0:9"]
    assert [i.warm_slot for i in Instance.select()] == [f"{POOL}#0"]


def test_a_pool_refills_once_the_creates_of_its_kind_are_built(settings: Settings) -> None:
    casts = Casts()
    _warm(settings, casts)
    service = InstanceService(settings, casts, ServiceKeys(new_key()))  # type: ignore[arg-type]
    body = {"instance": {"name": "orders", "flavorRef": "1", "volume": {"size": 1}}}
    made = service.create(CALLER, body)
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    assert Instance.select().where(Instance.warm_slot.is_null(False)).count() == 1
    Task.update(state=TaskState.SUCCEEDED).where(Task.instance_id == made.id).execute()
    warm_pool.keep_filled(settings, casts)  # type: ignore[arg-type]
    assert Instance.select().where(Instance.warm_slot.is_null(False)).count() == 2
