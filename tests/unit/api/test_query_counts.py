"""Every list and show route issues a fixed number of SQL statements, however many
instances there are (no lazy loads per row, paging in the query)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import falcon.testing
import pytest

from trove_svc.security import tokens
from trove_svc.store.models import (
    Backup,
    Configuration,
    DatastoreVersion,
    Instance,
    Schedule,
    ServiceStatus,
    Task,
    database_proxy,
)


def _add_instances(count: int, start: int) -> None:
    version = DatastoreVersion.get()
    for n in range(start, start + count):
        instance = Instance.create(
            id=f"i-{n:05d}",
            name=f"n{n}",
            project_id="p1",
            datastore_version=version,
            flavor="1",
            volume_size=1,
            status="ACTIVE",
            provisioned=True,
            port=30000 + n,
            host="127.0.0.1",
            created_at=float(n),
            updated_at=float(n),
        )
        ServiceStatus.create(instance=instance, operating_status="HEALTHY")
        Task.create(
            id=f"t-{n:05d}",
            instance_id=instance.id,
            project_id="p1",
            action="create",
            state="SUCCEEDED",
            created_at=float(n),
        )
        # Each instance brings a configuration group, a backup and, on the first
        # instance, a schedule: their lists must not grow per row either.
        Configuration.create(
            id=f"c-{n:05d}",
            project_id="p1",
            name=f"group{n}",
            datastore_version=version,
            values={},
            created_at=float(n),
            updated_at=float(n),
        )
        Backup.create(
            id=f"b-{n:05d}",
            name=f"backup{n}",
            project_id="p1",
            instance_id="i-00001" if n else instance.id,
            datastore=version.datastore.name,
            datastore_version=version.name,
            state="COMPLETED",
            created_at=float(n),
            updated_at=float(n),
        )
        Schedule.create(
            id=f"s-{n:05d}",
            instance_id="i-00001",
            project_id="p1",
            name=f"every{n}",
            cron="0 3 * * *",
            next_run_at=float(n),
            created_at=float(n),
        )


@pytest.fixture
def counted() -> Iterator[Callable[[], int]]:
    """The number of statements run since the last call."""
    database = database_proxy.obj
    real = database.execute_sql
    seen = [0]

    def counting(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        seen[0] += 1
        return real(sql, params, *args, **kwargs)

    database.execute_sql = counting

    def take() -> int:
        count, seen[0] = seen[0], 0
        return count

    yield take
    database.execute_sql = real


ROUTES = [
    "/v1.0/p1/instances",
    "/v1.0/p1/instances?limit=1000",
    "/v1.0/p1/instances/detail",
    "/v1.0/p1/instances?marker=i-00002&limit=5",
    "/v1.0/p1/instances/i-00001",
    "/v1.0/p1/instances/i-00001/tasks",
    "/v1.0/p1/instances/i-00001/tasks/t-00001",
    "/v1.0/p1/mgmt/instances",
    "/v1.0/p1/mgmt/instances/i-00001",
    "/v1.0/p1/flavors",
    "/v1.0/p1/datastores",
    "/v1.0/p1/datastores/postgresql/versions",
    "/v1.0/p1/limits",
    "/v1.0/p1/configurations",
    "/v1.0/p1/configurations/c-00001",
    "/v1.0/p1/configurations/c-00001/instances",
    "/v1.0/p1/backups",
    "/v1.0/p1/backups/b-00001",
    "/v1.0/p1/instances/i-00001/backups",
    "/v1.0/p1/instances/i-00001/schedules",
    "/v1.0/p1/mgmt/hosts",
]


def _statements(
    client: falcon.testing.TestClient, token: str, take: Callable[[], int]
) -> dict[str, int]:
    found = {}
    for route in ROUTES:
        path, _, query = route.partition("?")
        take()
        result = client.simulate_get(path, query_string=query, headers={"X-Auth-Token": token})
        assert result.status_code == 200, (route, result.text)
        found[route] = take()
    return found


def test_statements_do_not_grow_with_instances(
    client: falcon.testing.TestClient, counted: Callable[[], int]
) -> None:
    admin = tokens.issue("p1", "root", True, now=0.0)
    # A token's first use is written down (then at most once a minute): not per instance.
    client.simulate_get("/v1.0/p1/flavors", headers={"X-Auth-Token": admin})
    _add_instances(6, start=0)
    few = _statements(client, admin, counted)
    _add_instances(120, start=6)
    many = _statements(client, admin, counted)
    assert many == few
    # 6, and for an admin one more on a route naming a resource by id: whose it is.
    assert max(few.values()) <= 7, few


def test_the_default_page_is_trove_s_and_links_to_the_next(
    client: falcon.testing.TestClient, token: str
) -> None:
    _add_instances(45, start=0)
    first = client.simulate_get("/v1.0/p1/instances", headers={"X-Auth-Token": token}).json
    assert [i["id"] for i in first["instances"]] == [f"i-{n:05d}" for n in range(20)]
    link = first["links"][0]["href"]
    assert link.endswith("?limit=20&marker=i-00019")
    second = client.simulate_get(
        "/v1.0/p1/instances",
        query_string="limit=20&marker=i-00019",
        headers={"X-Auth-Token": token},
    ).json
    assert [i["id"] for i in second["instances"]] == [f"i-{n:05d}" for n in range(20, 40)]
    everything = client.simulate_get(
        "/v1.0/p1/instances", query_string="limit=1000", headers={"X-Auth-Token": token}
    ).json
    assert len(everything["instances"]) == 45 and "links" not in everything
    unknown = client.simulate_get(
        "/v1.0/p1/instances", query_string="marker=nope", headers={"X-Auth-Token": token}
    )
    assert unknown.status_code == 400
