"""The settings a replica must hold at least as high as its source: what each member holds,
whether a replica can follow, and the order a change takes across a set."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest

from tests import rows
from trove_svc.domain import catalog, errors, hot_standby
from trove_svc.domain.hot_standby import Order
from trove_svc.process.settings import PROJECT_ROOT
from trove_svc.store.db import open_store
from trove_svc.store.models import Configuration, DatastoreVersion, Flavor
from trove_wire import datastores

BASE = {"max_connections": 100, "max_worker_processes": 4}


def test_a_groups_values_go_on_top_of_the_roles() -> None:
    assert hot_standby.settings(BASE, {"max_connections": "123", "work_mem": 9}) == {
        "max_connections": 123,
        "max_worker_processes": 4,
    }


def test_a_replica_below_its_source_is_named_setting_by_setting() -> None:
    source = {"max_connections": 123, "max_worker_processes": 8}
    assert hot_standby.shortfalls(source, {"max_connections": 123, "max_worker_processes": 8}) == []
    assert hot_standby.shortfalls(source, {"max_connections": 150, "max_worker_processes": 9}) == []
    short = hot_standby.shortfalls(source, {"max_connections": 100, "max_worker_processes": 4})
    assert short == [
        "max_connections = 100 is lower than the source's 123",
        "max_worker_processes = 4 is lower than the source's 8",
    ]
    with pytest.raises(errors.BadRequest, match="max_connections = 100 is lower"):
        hot_standby.require_can_follow("The replica", source, {**source, "max_connections": 100})


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ({"max_connections": 150, "max_worker_processes": 4}, Order.REPLICAS_FIRST),
        ({"max_connections": 150, "max_worker_processes": 8}, Order.REPLICAS_FIRST),
        ({"max_connections": 50, "max_worker_processes": 4}, Order.SOURCE_FIRST),
        ({"max_connections": 100, "max_worker_processes": 4}, Order.ANY),
    ],
)
def test_raised_goes_to_the_replicas_first_and_lowered_to_the_source_first(
    after: dict[str, int], expected: Order
) -> None:
    assert hot_standby.order([(BASE, after)]) is expected


def test_a_change_that_raises_one_setting_and_lowers_another_is_refused() -> None:
    with pytest.raises(errors.BadRequest, match="raises max_connections and lowers max_worker"):
        hot_standby.order([(BASE, {"max_connections": 150, "max_worker_processes": 2})])
    # The same across members: one member raised, another lowered.
    raised = (BASE, {**BASE, "max_connections": 150})
    lowered = (BASE, {**BASE, "max_connections": 50})
    with pytest.raises(errors.BadRequest, match="two changes"):
        hot_standby.order([raised, lowered])


def test_members_in_the_order_of_the_change() -> None:
    assert hot_standby.in_order(Order.REPLICAS_FIRST, "s", ["r1", "r2"]) == ["r1", "r2", "s"]
    assert hot_standby.in_order(Order.SOURCE_FIRST, "s", ["r1", "r2"]) == ["s", "r1", "r2"]


@pytest.mark.parametrize("name", sorted(datastores.REGISTRY))
def test_only_postgresql_names_hot_standby_settings(name: str) -> None:
    named = datastores.get(name).hot_standby_settings(1)
    if name == "postgresql":
        assert set(named) == {
            "max_connections",
            "max_worker_processes",
            "max_wal_senders",
            "max_prepared_transactions",
            "max_locks_per_transaction",
        }
    else:
        assert named == {}


@pytest.mark.parametrize("vcpus", [1, 2, 3, 8])
def test_postgresql_baseline_is_what_its_role_writes(vcpus: int) -> None:
    """The spec's values where no group sets them are those the role's template writes."""
    template = PROJECT_ROOT / "roles/postgresql/templates/postgresql.conf.j2"
    defaults = (PROJECT_ROOT / "roles/postgresql/defaults/main.yml").read_text()
    max_connections = int(re.search(r"^postgresql_max_connections: (\d+)$", defaults, re.M)[1])  # type: ignore[index]
    written = {}
    for line in template.read_text().splitlines():
        found = re.fullmatch(r"(max_connections|max_worker_processes) = (.*)", line)
        if found:
            text = jinja2.Template(found[2]).render(
                postgresql_vcpus=vcpus, postgresql_max_connections=max_connections
            )
            written[found[1]] = int(text)
    baseline = datastores.get("postgresql").hot_standby_settings(vcpus)
    assert written == {name: baseline[name] for name in written}
    assert set(written) == {"max_connections", "max_worker_processes"}


# With the store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[None]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    Flavor.create(id="8", name="eight", ram=1024, vcpus=8)
    yield
    database.close()


def _group(group_id: str, values: dict[str, int]) -> str:
    version = DatastoreVersion.get()
    Configuration.create(
        id=group_id,
        project_id="p1",
        name=group_id,
        datastore_version=version,
        values=values,
        created_at=0,
        updated_at=0,
    )
    return group_id


def test_a_set_change_raising_a_setting_reaches_the_replicas_first(store: None) -> None:
    group = _group("g", {"max_connections": 123})
    source = rows.instance(id="s", configuration_id=group)
    replicas = [rows.instance(id=r, replica_of_id="s", configuration_id=group) for r in "ab"]
    new = {member: {"max_connections": 150} for member in ("s", "a", "b")}
    change, members = hot_standby.plan(source, replicas, new)
    assert change is Order.REPLICAS_FIRST and [m.id for m in members] == ["a", "b", "s"]
    change, members = hot_standby.plan(source, replicas, {m: {} for m in new})  # detached
    assert change is Order.SOURCE_FIRST and [m.id for m in members] == ["s", "a", "b"]


def test_a_change_no_replica_could_follow_is_refused(store: None) -> None:
    source = rows.instance(id="s", configuration_id=_group("g", {"max_connections": 123}))
    replica = rows.instance(id="r", replica_of_id="s")  # no group: 100
    with pytest.raises(errors.BadRequest, match="Replica r could not follow"):
        hot_standby.plan(source, [replica], {"s": {"max_connections": 124}})
    with pytest.raises(errors.BadRequest, match="max_connections = 99 is lower"):
        hot_standby.plan(source, [replica], {"r": {"max_connections": 99}})
    change, members = hot_standby.plan(source, [replica], {"r": {"max_connections": 123}})
    assert change is Order.REPLICAS_FIRST and [m.id for m in members] == ["r"]


def test_a_flavor_with_more_vcpus_raises_the_worker_processes(store: None) -> None:
    source = rows.instance(id="s")
    replica = rows.instance(id="r", replica_of_id="s")
    with pytest.raises(errors.BadRequest, match="replica r could not follow"):
        hot_standby.require_flavor_fits_set(source, Flavor.get_by_id("8"))
    hot_standby.require_flavor_fits_set(replica, Flavor.get_by_id("8"))  # a replica may grow
