"""Replicas end to end, for each datastore: a replica receives its source's writes and
refuses its own; a switchover (promote) loses no committed write and the old source
follows the new one; a detach makes a replica stand alone; and when a source's datastore
and guest are killed, the task manager fails it over by itself, and the old source, started
alone meanwhile (a split brain), rejoins as a replica once its guest reports again, its
stray write discarded."""

from __future__ import annotations

import calendar
import itertools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import redis

from tests import processes, support

pytestmark = [pytest.mark.integration, pytest.mark.long]

PROJECT = "replicas"
USER = {"name": "writer", "password": "Writer-pw-1-long"}


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


def _api(service: support.Service, token: str, method: str, path: str, body: Any = None) -> Any:
    return service.request(method, f"/v1.0/{PROJECT}{path}", token, body)


def _create(service: support.Service, token: str, name: str, **spec: Any) -> dict[str, Any]:
    body = {"instance": {"name": name, "flavorRef": "1", "volume": {"size": 1}, **spec}}
    made = _api(service, token, "POST", "/instances", body)
    assert made.status == 200, made.body
    return dict(made.body["instance"])


def _healthy(service: support.Service, token: str, instance_id: str) -> dict[str, Any]:
    return service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=180)


def _healthy_source(
    service: support.Service, token: str, name: str, datastore: str, database: str = "", **spec: Any
) -> dict[str, Any]:
    """A new instance of `datastore`, once HEALTHY, with USER (and `database`, which USER
    may use)."""
    if database:
        databases = [{"name": database}]
        spec.update(databases=databases, users=[{**USER, "databases": databases}])
    else:
        spec.update(users=[USER])
    made = _create(service, token, name, datastore={"type": datastore}, **spec)
    return _healthy(service, token, made["id"])


def _show(service: support.Service, token: str, instance_id: str) -> dict[str, Any]:
    return dict(_api(service, token, "GET", f"/instances/{instance_id}").body["instance"])


def _action(service: support.Service, token: str, instance_id: str, action: str) -> None:
    resp = _api(service, token, "POST", f"/instances/{instance_id}/action", {action: {}})
    assert resp.status == 202, resp.body


def _eventually(check: Callable[[], bool], what: str, timeout: float = 180) -> None:
    """Waits for `check`; by default as long as an action's playbook may take with the
    suite's four workers on two cores (a replica's resize took over 60 s in CI)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise AssertionError(f"never: {what}")


def _tasks(service: support.Service, token: str, instance_id: str) -> list[dict[str, Any]]:
    return list(_api(service, token, "GET", f"/instances/{instance_id}/tasks").body["tasks"])


def _delete_all(service: support.Service, token: str, ids: list[str]) -> None:
    """Replicas before their source (a source with replicas is not deleted)."""
    for instance_id in ids:
        assert _api(service, token, "DELETE", f"/instances/{instance_id}").status == 202
        service.wait_gone(token, PROJECT, instance_id, timeout=120)


def _kill(pid_file: Path) -> None:
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)


# PostgreSQL


def _pg(instance: dict[str, Any]) -> psycopg.Connection[Any]:
    """A stock client's session at the address and port the instance shows."""
    login = {"user": USER["name"], "password": USER["password"], "dbname": "app"}
    (address,) = instance["ip"]
    return psycopg.connect(
        host=address, port=instance["port"], autocommit=True, connect_timeout=3, **login
    )


def _pg_rows(instance: dict[str, Any]) -> list[int]:
    with _pg(instance) as conn:
        return [row[0] for row in conn.execute("SELECT n FROM items ORDER BY n")]


def _pg_write(instance: dict[str, Any], n: int) -> None:
    with _pg(instance) as conn:
        conn.execute("INSERT INTO items VALUES (%s)", (n,))


def _pg_refuses_writes(instance: dict[str, Any]) -> bool:
    try:
        _pg_write(instance, -1)
    except psycopg.errors.ReadOnlySqlTransaction:
        return True
    return False


def test_replica_requests_that_cannot_work_are_refused(
    service: support.Service, token: str
) -> None:
    unknown = _api(
        service,
        token,
        "POST",
        "/instances",
        {"instance": {"name": "r", "flavorRef": "1", "volume": {"size": 1}, "replica_of": "nope"}},
    )
    assert unknown.status == 404 and "replica_of" in unknown.body["itemNotFound"]["message"]
    lonely = _api(
        service,
        token,
        "POST",
        "/instances",
        {"instance": {"name": "r", "flavorRef": "1", "volume": {"size": 1}, "replica_count": 2}},
    )
    assert lonely.status == 400 and "replica_of" in lonely.body["badRequest"]["message"]


def test_postgresql_replica_switchover_and_detach(service: support.Service, token: str) -> None:
    source = _healthy_source(service, token, "pg-source", "postgresql", "app")
    with _pg(source) as conn:
        conn.execute("CREATE TABLE items (n int PRIMARY KEY)")
        conn.execute("INSERT INTO items SELECT generate_series(1, 100)")
    _check_replica_requests_refused(service, token, source)
    replica = _healthy(
        service, token, _create(service, token, "pg-replica", replica_of=source["id"])["id"]
    )
    _check_replica_follows_its_source(service, token, source, replica)
    _check_source_keeps_its_replica(service, token, source, replica)
    _check_switchover(service, token, source, replica)
    _check_detach(service, token, source, replica)
    _delete_all(service, token, [source["id"], replica["id"]])


def _check_replica_requests_refused(
    service: support.Service, token: str, source: dict[str, Any]
) -> None:
    """What a replica cannot take from a request is refused before anything is built."""
    bad = _api(
        service,
        token,
        "POST",
        "/instances",
        {
            "instance": {
                "name": "r",
                "flavorRef": "1",
                "volume": {"size": 1},
                "replica_of": source["id"],
                "databases": [{"name": "more"}],
            }
        },
    )
    assert bad.status == 400 and "databases" in bad.body["badRequest"]["message"]
    other = service.token("replicas-other")
    wanted = {"instance": {"name": "r", "replica_of": source["id"]}}
    foreign = service.request("POST", "/v1.0/replicas-other/instances", other, wanted)
    assert foreign.status == 404, foreign.body  # another project's instance is not there
    not_replica = _api(
        service,
        token,
        "POST",
        f"/instances/{source['id']}/action",
        {"promote_to_replica_source": {}},
    )
    assert not_replica.status == 400, not_replica.body


def _check_replica_follows_its_source(
    service: support.Service, token: str, source: dict[str, Any], replica: dict[str, Any]
) -> None:
    """The replica has its source's rows, receives its writes, refuses its own, and goes on
    following through a resize."""
    assert replica["replica_of"]["id"] == source["id"]
    assert replica["datastore"] == source["datastore"]
    assert [r["id"] for r in _show(service, token, source["id"])["replicas"]] == [replica["id"]]
    assert _pg_rows(replica) == list(range(1, 101))
    _pg_write(source, 101)
    _eventually(lambda: _pg_rows(replica)[-1] == 101, "row 101 on the replica")
    assert _pg_refuses_writes(replica)
    # A resize rewrites the server's settings: the replica goes on following its source.
    resize = {"resize": {"flavorRef": "2"}}
    assert _api(service, token, "POST", f"/instances/{replica['id']}/action", resize).status == 202
    _eventually(lambda: _show(service, token, replica["id"])["flavor"]["id"] == "2", "resized")
    _healthy(service, token, replica["id"])
    _pg_write(source, 100_000)
    _eventually(lambda: _pg_rows(replica)[-1] == 100_000, "a row after the resize")
    with _pg(source) as conn:
        conn.execute("DELETE FROM items WHERE n = 100000")


def _check_source_keeps_its_replica(
    service: support.Service, token: str, source: dict[str, Any], replica: dict[str, Any]
) -> None:
    """What would break the pair is refused: a backup of the replica, deleting or ejecting
    a healthy source; the replication account is not among the users."""
    backup = _api(
        service, token, "POST", "/backups", {"backup": {"name": "b", "instance": replica["id"]}}
    )
    assert backup.status == 400 and "its source" in backup.body["badRequest"]["message"]
    # The replication account is the service's own: not among the users.
    users = _api(service, token, "GET", f"/instances/{source['id']}/users").body["users"]
    assert [u["name"] for u in users] == [USER["name"]]
    busy = _api(service, token, "DELETE", f"/instances/{source['id']}")
    assert busy.status == 409 and "replicas" in busy.body["conflictingRequest"]["message"]
    healthy_source = _api(
        service, token, "POST", f"/instances/{source['id']}/action", {"eject_replica_source": {}}
    )
    assert healthy_source.status == 409, healthy_source.body


def _check_switchover(
    service: support.Service, token: str, source: dict[str, Any], replica: dict[str, Any]
) -> None:
    """Every committed row is on the new source, and the old one follows it."""
    _pg_write(source, 102)
    _action(service, token, replica["id"], "promote_to_replica_source")
    # Meanwhile neither side may be deleted.
    for member in (replica, source):
        busy = _api(service, token, "DELETE", f"/instances/{member['id']}")
        assert busy.status == 409, busy.body
        message = busy.body["conflictingRequest"]["message"]
        assert "is being switched over (promote_to_replica_source)" in message, message
    _healthy(service, token, replica["id"])
    assert _pg_rows(replica)[-2:] == [101, 102]
    _pg_write(replica, 103)
    shown = _show(service, token, source["id"])
    assert shown["replica_of"]["id"] == replica["id"]
    assert "replica_of" not in _show(service, token, replica["id"])
    _eventually(lambda: _pg_rows(source)[-1] == 103, "row 103 on the old source")
    assert _pg_refuses_writes(source)
    done = [t for t in _tasks(service, token, replica["id"]) if t["action"] == "promote"]
    assert done and done[0]["state"] == "SUCCEEDED", done
    followed = [t for t in _tasks(service, token, source["id"]) if t["action"] == "replication"]
    assert followed and replica["id"] in followed[0]["message"], followed


def _check_detach(
    service: support.Service, token: str, source: dict[str, Any], replica: dict[str, Any]
) -> None:
    """The old source, detached from the new one, stands alone and takes writes."""
    detach = {"instance": {"replica_of": None}}
    assert _api(service, token, "PATCH", f"/instances/{source['id']}", detach).status == 202
    _eventually(lambda: "replica_of" not in _healthy(service, token, source["id"]), "detached")
    _pg_write(source, 104)
    assert _pg_rows(source)[-1] == 104
    _pg_write(replica, 105)
    time.sleep(1)
    assert 105 not in _pg_rows(source)


def test_postgresql_source_killed_fails_over_by_itself(
    service: support.Service, token: str
) -> None:
    source = _healthy_source(service, token, "pg-doomed", "postgresql", "app")
    with _pg(source) as conn:
        conn.execute("CREATE TABLE items (n int PRIMARY KEY)")
        conn.execute("INSERT INTO items SELECT generate_series(1, 50)")
    # Two replicas in one request (Trove's replica_count): the first is answered.
    first = _create(service, token, "pg-standby", replica_of=source["id"], replica_count=2)
    listed = _api(service, token, "GET", "/instances?limit=1000").body["instances"]
    second = next(i for i in listed if i["name"] == "pg-standby-2")
    standbys = [_healthy(service, token, made["id"]) for made in (first, second)]
    for standby in standbys:
        _eventually(lambda s=standby: len(_pg_rows(s)) == 50, "each replica has every row")
    assert {r["id"] for r in _show(service, token, source["id"])["replicas"]} == {
        s["id"] for s in standbys
    }

    instance_dir = service.state_dir / "instances" / source["id"]
    server = processes.command_of(instance_dir / "postgresql" / "data" / "postmaster.pid")
    guest = processes.command_of(instance_dir / "guest.pid")
    _kill(instance_dir / "postgresql" / "data" / "postmaster.pid")
    processes.kill_guest(instance_dir / "guest.pid")
    killed = time.monotonic()

    def promoted_one() -> dict[str, Any]:
        return next(s for s in standbys if not _show(service, token, s["id"]).get("replica_of"))

    _eventually(lambda: promoted_one() is not None, "one replica is promoted")
    replica = promoted_one()
    _eventually(lambda: _pg_write(replica, 51) is None, "the replica takes writes")
    LOG_LINE = f"failover took {time.monotonic() - killed:.1f} s"
    assert _pg_rows(replica) == list(range(1, 52)), LOG_LINE
    # The other follows the new source, and has what it takes.
    (other,) = [s for s in standbys if s["id"] != replica["id"]]
    _eventually(
        lambda: (
            (_show(service, token, other["id"]).get("replica_of") or {}).get("id") == replica["id"]
        ),
        "the other replica follows the new source",
    )
    _eventually(lambda: _pg_rows(other)[-1] == 51, "the other replica has row 51")
    assert _pg_refuses_writes(other)

    ejected = _ended(service, token, source["id"], "eject")
    assert ejected["requested_by"] == "trove-svc (automatic failover)", ejected

    # A split brain: the old source, cut off, is started alone and takes a write...
    processes.start_again(*server)
    _eventually(lambda: _pg_write(source, 1000) is None, "the cut-off source takes a write")
    # ... then its guest reports again: it rejoins as a replica of the new source, and the
    # stray write is discarded, never merged.
    processes.start_again(*guest)
    back = time.monotonic()
    rejoined = _ended(service, token, source["id"], "rejoin")
    assert rejoined["state"] == "SUCCEEDED", (rejoined["message"], rejoined.get("failed_step"))
    # Rewound, and the audit trail says how much of what it wrote went.
    assert "rewound with pg_rewind" in rejoined["message"], rejoined["message"]
    assert "bytes), was discarded" in rejoined["message"], rejoined["message"]
    old = service.wait_for(
        token,
        PROJECT,
        source["id"],
        lambda i: (i["status"], i.get("operating_status")) == ("ACTIVE", "HEALTHY"),
        timeout=max(1.0, 60 - (time.monotonic() - back)),
    )
    assert time.monotonic() - back <= 60, "a HEALTHY replica within 60 s of coming back"
    assert old["replica_of"]["id"] == replica["id"], old
    _eventually(lambda: _pg_rows(source) == list(range(1, 52)), "the stray row is gone")
    assert _pg_refuses_writes(source)
    assert source["id"] in {r["id"] for r in _show(service, token, replica["id"])["replicas"]}
    assert "rewind" in [t["action"] for t in _tasks(service, token, source["id"])]
    promoted = [t for t in _tasks(service, token, replica["id"]) if t["action"] == "promote"]
    assert promoted and "position" in promoted[0]["message"], promoted
    _delete_all(service, token, [source["id"], other["id"], replica["id"]])


# Freezing every process of a source takes this much: the source's lease (10 s), then the
# failover's limit (10 s) from its last heartbeat, and the failover's own few seconds.
FAILOVER_OF_A_FROZEN_SOURCE = 30.0
# After its processes resume, a source whose lease ran out refuses writes within this.
FENCED_AFTER_RESUMING = 2.0
LEASE = 10.0


def _pg_write_refused(instance: dict[str, Any], tries: itertools.count[int]) -> bool:
    """A write (of a row never written before) is refused: the server is read-only, or
    takes no connection (stopping, restarting in standby)."""
    try:
        _pg_write(instance, -next(tries))
    except (psycopg.errors.ReadOnlySqlTransaction, psycopg.OperationalError):
        return True
    return False


def _promoted(service: support.Service, token: str, candidates: list[dict[str, Any]]) -> Any:
    return next(
        (c for c in candidates if not _show(service, token, c["id"]).get("replica_of")), None
    )


def _leased(service: support.Service, instance: dict[str, Any]) -> None:
    """Wait until the source holds a lease: its watchdog runs (armed by the first grant)."""
    instance_dir = str(service.state_dir / "instances" / instance["id"])
    _eventually(
        lambda: any(
            instance_dir in line for line in processes.processes_mentioning("trove_guest.watchdog")
        ),
        f"{instance['id']} holds a lease",
        30,
    )


def test_postgresql_source_frozen_or_cut_off_fences_itself_before_its_failover(
    service: support.Service, token: str
) -> None:
    """(a) Every process of a source frozen (SIGSTOP): a replica is promoted once the
    source's lease ran out; when they resume, the old source refuses writes within 2 s,
    and rejoins as a replica, what it wrote meanwhile discarded. (b) The new source's guest
    cut off from the broker while clients still reach its server: it refuses writes by the
    end of its lease, before its replica (the old source) is promoted."""
    source = _healthy_source(service, token, "pg-frozen", "postgresql", "app")
    with _pg(source) as conn:
        conn.execute("CREATE TABLE items (n int PRIMARY KEY)")
        conn.execute("INSERT INTO items SELECT generate_series(1, 10)")
    replica = _healthy(
        service, token, _create(service, token, "pg-thawed", replica_of=source["id"])["id"]
    )
    _eventually(lambda: len(_pg_rows(replica)) == 10, "the replica has every row")
    tries = itertools.count(1)
    frozen = _check_frozen_source_fails_over_and_rejoins(service, token, source, replica, tries)
    cut_off = _check_cut_off_source_fences_before_its_failover(
        service, token, replica, source, tries
    )
    print(f"{frozen}; {cut_off}")  # the figures, for a look with -s
    _ended(service, token, replica["id"], "eject")
    _delete_all(service, token, [replica["id"], source["id"]])


def _check_frozen_source_fails_over_and_rejoins(
    service: support.Service,
    token: str,
    source: dict[str, Any],
    replica: dict[str, Any],
    tries: itertools.count[int],
) -> str:
    """Frozen, as a paused machine would leave it: the server's processes, the guest, its
    watchdog."""
    _leased(service, source)
    frozen = processes.pids_of_instance(service.state_dir / "instances" / source["id"])
    assert len(frozen) >= 3, frozen
    processes.signal_all(frozen, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        _eventually(
            lambda: _promoted(service, token, [replica]) is not None,
            "the replica is promoted",
            FAILOVER_OF_A_FROZEN_SOURCE + 30,
        )
        took = time.monotonic() - stopped
        assert took <= FAILOVER_OF_A_FROZEN_SOURCE, f"promoted {took:.1f} s after the freeze"
        _eventually(lambda: _pg_write(replica, 11) is None, "the new source takes writes", 30)
    finally:
        processes.signal_all(frozen, signal.SIGCONT)
    resumed = time.monotonic()
    _eventually(lambda: _pg_write_refused(source, tries), "the old source refuses writes", 10)
    refused_after = time.monotonic() - resumed
    assert refused_after <= FENCED_AFTER_RESUMING, f"refused writes {refused_after:.1f} s on"
    waited = [t for t in _tasks(service, token, source["id"]) if t["action"] == "lease"]
    assert waited and "its lease ran out" in waited[0]["message"], waited
    # With automatic rejoin, it comes back as a replica of the new source; whatever it
    # took in the moment before its fence is gone.
    rejoined = _ended(service, token, source["id"], "rejoin")
    assert rejoined["state"] == "SUCCEEDED", (rejoined["message"], rejoined.get("failed_step"))
    _healthy(service, token, source["id"])
    assert _show(service, token, source["id"])["replica_of"]["id"] == replica["id"]
    _eventually(lambda: _pg_rows(source) == list(range(1, 12)), "the old source follows")
    assert _pg_refuses_writes(source)
    return f"frozen: promoted after {took:.1f} s, refused writes {refused_after:.1f} s on"


def _check_cut_off_source_fences_before_its_failover(
    service: support.Service,
    token: str,
    source: dict[str, Any],
    replica: dict[str, Any],
    tries: itertools.count[int],
) -> str:
    """The source's guest cut off from the control plane; its clients still reach it."""
    _leased(service, source)
    support.cut_guest_off(service, source["id"])
    cut = time.time()
    refused_at = None
    while refused_at is None and time.time() < cut + LEASE + 30:
        if _pg_write_refused(source, tries):
            refused_at = time.time()
        time.sleep(0.1)
    assert refused_at is not None, "the cut-off source never refused writes"
    assert refused_at - cut <= LEASE, f"refused writes {refused_at - cut:.1f} s after the cut"
    _eventually(
        lambda: _promoted(service, token, [replica]) is not None,
        "the replica is promoted in its place",
        60,
    )
    (promotion,) = [t for t in _tasks(service, token, replica["id"]) if t["action"] == "promote"]
    promoted_at = calendar.timegm(time.strptime(promotion["started"], "%Y-%m-%dT%H:%M:%S"))
    assert refused_at < promoted_at, (refused_at, promotion)
    assert _pg_refuses_writes(source)
    return (
        f"cut off: refused writes {refused_at - cut:.1f} s after the cut, "
        f"{promoted_at - refused_at:.1f} s before the promotion"
    )


def _pg_setting(instance: dict[str, Any], name: str) -> str:
    with _pg(instance) as conn:
        row = conn.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,)).fetchone()
        return str(row[0])  # type: ignore[index]


def _configuration(service: support.Service, token: str, values: dict[str, Any]) -> str:
    body = {
        "configuration": {
            "name": "set-tuning",
            "values": values,
            "datastore": {"type": "postgresql"},
        }
    }
    made = _api(service, token, "POST", "/configurations", body)
    assert made.status == 200, made.body
    return str(made.body["configuration"]["id"])


def _ended(service: support.Service, token: str, instance_id: str, action: str) -> dict[str, Any]:
    """The instance's newest task of `action`, once it ended."""
    found: list[dict[str, Any]] = []

    def ended() -> bool:
        found[:] = [t for t in _tasks(service, token, instance_id) if t["action"] == action]
        return bool(found) and found[-1]["finished"] is not None

    _eventually(ended, f"a {action} task of {instance_id} ends", 180)
    return found[-1]


def test_postgresql_replica_takes_its_sources_group_and_a_raise_goes_replicas_first(
    service: support.Service, token: str
) -> None:
    group = _configuration(service, token, {"max_connections": 123})
    source = _healthy_source(
        service, token, "pg-tuned-source", "postgresql", "app", configuration=group
    )
    assert _pg_setting(source, "max_connections") == "123"

    # A replica that would start below its source is refused before anything is built.
    lower = _configuration(service, token, {"max_connections": 110})
    refused = _api(
        service,
        token,
        "POST",
        "/instances",
        {"instance": {"name": "pg-too-small", "replica_of": source["id"], "configuration": lower}},
    )
    assert refused.status == 400, refused.body
    assert (
        "max_connections = 110 is lower than the source's 123"
        in (refused.body["badRequest"]["message"])
    )
    listed = _api(service, token, "GET", "/instances?limit=1000").body["instances"]
    assert "pg-too-small" not in [i["name"] for i in listed]

    replica = _healthy(
        service, token, _create(service, token, "pg-tuned-replica", replica_of=source["id"])["id"]
    )
    assert replica["configuration"]["id"] == group
    assert _pg_setting(replica, "max_connections") == "123"

    # Raised on the set: the replica restarts with it first, then the source.
    patch = {"configuration": {"values": {"max_connections": 150}}}
    assert _api(service, token, "PATCH", f"/configurations/{group}", patch).status == 200
    done = _ended(service, token, source["id"], "configure_set")
    assert done["state"] == "SUCCEEDED", done
    on_replica = _ended(service, token, replica["id"], "configure")
    on_source = _ended(service, token, source["id"], "configure")
    assert on_replica["state"] == on_source["state"] == "SUCCEEDED", (on_replica, on_source)
    assert on_replica["finished"] <= on_source["started"], (on_replica, on_source)
    for member in (source, replica):
        shown = _healthy(service, token, member["id"])
        assert shown["status"] == "ACTIVE"  # restarted: nothing waits for a restart
        assert _pg_setting(member, "max_connections") == "150"
    with _pg(source) as conn:
        conn.execute("CREATE TABLE items (n int PRIMARY KEY)")
    _pg_write(source, 1)
    _eventually(lambda: _pg_rows(replica) == [1], "the replica still follows")

    # Without the group the replica would hold less than its source: refused.
    detach = {"instance": {"configuration": None}}
    refused = _api(service, token, "PUT", f"/instances/{replica['id']}", detach)
    assert refused.status == 400, refused.body
    assert (
        "max_connections = 100 is lower than the source's 150"
        in (refused.body["badRequest"]["message"])
    )
    assert _show(service, token, replica["id"])["configuration"]["id"] == group
    _delete_all(service, token, [replica["id"], source["id"]])
    for made in (group, lower):
        assert _api(service, token, "DELETE", f"/configurations/{made}").status == 202


# MariaDB


def _maria(instance: dict[str, Any]) -> pymysql.connections.Connection[Any]:
    (address,) = instance["ip"]
    return pymysql.connect(
        host=address,
        port=instance["port"],
        user=USER["name"],
        password=USER["password"],
        database="shop",
        autocommit=True,
        connect_timeout=3,
    )


def _maria_rows(instance: dict[str, Any]) -> list[int]:
    conn = _maria(instance)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT n FROM items ORDER BY n")
            return [row[0] for row in cursor.fetchall()]
    finally:
        conn.close()


def _maria_write(instance: dict[str, Any], n: int) -> None:
    conn = _maria(instance)
    try:
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO items VALUES (%s)", (n,))
    finally:
        conn.close()


def _maria_refuses_writes(instance: dict[str, Any]) -> bool:
    try:
        _maria_write(instance, -1)
    except pymysql.err.OperationalError as exc:
        return exc.args[0] == 1290  # ER_OPTION_PREVENTS_STATEMENT: --read-only
    return False


def test_mariadb_replica_switchover_then_failover(service: support.Service, token: str) -> None:
    source = _healthy_source(service, token, "maria-source", "mariadb", "shop")
    conn = _maria(source)
    with conn.cursor() as cursor:
        cursor.execute("CREATE TABLE items (n INT PRIMARY KEY)")
        cursor.executemany("INSERT INTO items VALUES (%s)", [(n,) for n in range(1, 21)])
    conn.close()

    replica = _healthy(
        service, token, _create(service, token, "maria-replica", replica_of=source["id"])["id"]
    )
    assert _maria_rows(replica) == list(range(1, 21))
    _maria_write(source, 21)
    _eventually(lambda: _maria_rows(replica)[-1] == 21, "row 21 on the replica")
    assert _maria_refuses_writes(replica)
    users = _api(service, token, "GET", f"/instances/{replica['id']}/users").body["users"]
    assert [u["name"] for u in users] == [USER["name"]]

    _maria_write(source, 22)
    _action(service, token, replica["id"], "promote_to_replica_source")
    _healthy(service, token, replica["id"])
    assert _maria_rows(replica)[-2:] == [21, 22]
    _maria_write(replica, 23)
    _eventually(lambda: _maria_rows(source)[-1] == 23, "row 23 on the old source")
    assert _maria_refuses_writes(source)
    assert _show(service, token, source["id"])["replica_of"]["id"] == replica["id"]

    # Now the new source dies: the old one (its replica) is promoted by itself.
    new_dir = service.state_dir / "instances" / replica["id"]
    server = processes.command_of(new_dir / "mariadb" / "mariadbd.pid")
    guest = processes.command_of(new_dir / "guest.pid")
    _kill(new_dir / "mariadb" / "mariadbd.pid")
    processes.kill_guest(new_dir / "guest.pid")
    _eventually(lambda: _maria_write(source, 24) is None, "failover to the first")
    assert _maria_rows(source)[-2:] == [23, 24]
    _ended(service, token, replica["id"], "eject")

    # A split brain: the failed-over one, cut off, is started alone and takes a write; then
    # its guest reports again, and it rejoins as a replica of the new source, copied afresh.
    processes.start_again(*server)
    _eventually(lambda: _maria_write(replica, 1000) is None, "the cut-off one writes")
    processes.start_again(*guest)
    came_back = time.monotonic()
    rejoined = _ended(service, token, replica["id"], "rejoin")
    assert rejoined["state"] == "SUCCEEDED", (rejoined["message"], rejoined.get("failed_step"))
    assert "1 transaction it wrote after the failover" in rejoined["message"], rejoined
    back = service.wait_for(
        token,
        PROJECT,
        replica["id"],
        lambda i: (i["status"], i.get("operating_status")) == ("ACTIVE", "HEALTHY"),
        timeout=max(1.0, 60 - (time.monotonic() - came_back)),
    )
    assert time.monotonic() - came_back <= 60, "a HEALTHY replica within 60 s of coming back"
    assert back["replica_of"]["id"] == source["id"], back
    assert _maria_refuses_writes(replica)
    _maria_write(source, 25)
    _eventually(lambda: _maria_rows(replica)[-1] == 25, "the rejoined one follows")
    assert _maria_rows(replica) == [*range(1, 26)], "the stray row is gone"
    _delete_all(service, token, [replica["id"], source["id"]])


# Redis


def test_redis_replica_and_switchover(service: support.Service, token: str) -> None:
    source = _healthy_source(service, token, "redis-source", "redis")

    def client(instance: dict[str, Any]) -> redis.Redis:
        (address,) = instance["ip"]
        return redis.Redis(
            host=address,
            port=instance["port"],
            username=USER["name"],
            password=USER["password"],
            socket_timeout=3,
        )

    client(source).set("k1", "v1")
    replica = _healthy(
        service,
        token,
        _create(service, token, "redis-replica", replica_of=source["id"], users=[])["id"],
    )
    assert replica["replica_of"]["id"] == source["id"]
    # Redis copies no ACL users: the replica's own admin sees the data.
    reader = _redis_admin(service, replica)
    _eventually(lambda: reader.get("k1") == b"v1", "k1 on the replica")
    client(source).set("k2", "v2")
    _eventually(lambda: reader.get("k2") == b"v2", "k2 on the replica")
    with pytest.raises(redis.ReadOnlyError):
        reader.set("mine", "no")

    _action(service, token, replica["id"], "promote_to_replica_source")
    _healthy(service, token, replica["id"])
    reader.set("k3", "v3")
    old = _redis_admin(service, source)
    _eventually(lambda: old.get("k3") == b"v3", "k3 on the old source")
    with pytest.raises(redis.ReadOnlyError):
        old.set("mine", "no")
    _delete_all(service, token, [source["id"], replica["id"]])


def _redis_admin(service: support.Service, instance: dict[str, Any]) -> redis.Redis:
    """The instance's admin, from its guest's own settings (the test is the operator): the
    guest reaches its datastore where clients do."""
    import json

    guest = service.state_dir / "instances" / instance["id"] / "guest.json"
    connection = json.loads(guest.read_text())["connection"]
    assert ([connection["host"]], connection["port"]) == (instance["ip"], instance["port"])
    return redis.Redis(
        host=connection["host"],
        port=connection["port"],
        username=connection["user"],
        password=connection["password"],
        socket_timeout=3,
    )
