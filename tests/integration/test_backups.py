"""Backups and restores for each datastore, end to end: exactly the rows of the backup, the
increments in order, a time between two writes; damaged backups refused; failures that
leave the instance ACTIVE; S3 storage against a local S3-compatible server; forged backup
reports that reach nothing outside their instance's repository."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import psycopg
import pymysql
import pytest
import redis

from tests import moto_s3, support
from tests.deployments import store, tasks_of, wait_until
from tests.processes import processes_mentioning
from trove_wire import datastores, seal, topology
from trove_wire.envelope import Envelope

pytestmark = [pytest.mark.integration, pytest.mark.long]

PROJECT = "backups"
PASSWORD = "Backup-test-pw-1"
POINT_IN_TIME = [n for n, s in datastores.REGISTRY.items() if s.capabilities.point_in_time]


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


def _instance(service: support.Service, token: str, datastore: str) -> dict[str, Any]:
    user = {"name": "app", "password": PASSWORD}
    extra: dict[str, Any] = {"users": [user]}
    if datastore != "redis":
        extra = {
            "databases": [{"name": "app"}],
            "users": [{**user, "databases": [{"name": "app"}]}],
        }
    return service.create_healthy(
        token, PROJECT, f"{datastore}-src", datastore={"type": datastore}, **extra
    )


def _sql(datastore: str, instance: dict[str, Any], statement: str) -> list[tuple[Any, ...]]:
    if datastore == "postgresql":
        with psycopg.connect(
            host=instance["ip"][0],
            port=instance["port"],
            user="app",
            password=PASSWORD,
            dbname="app",
            autocommit=True,
        ) as conn:
            cursor = conn.execute(statement)
            return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
    conn = pymysql.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user="app",
        password=PASSWORD,
        database="app",
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return [tuple(r) for r in cursor.fetchall()]
    finally:
        conn.close()


def backup(
    service: support.Service,
    token: str,
    instance: dict[str, Any],
    name: str,
    wait_healthy: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    made = service.backup_ended(token, PROJECT, instance["id"], name, **extra)
    if wait_healthy:
        service.wait_for(token, PROJECT, instance["id"], support.active_and_healthy)
    return made


def restore(
    service: support.Service, token: str, made: dict[str, Any], when: str | None = None
) -> dict[str, Any]:
    return restore_all(service, token, [(made, when)])[0]


def restore_all(
    service: support.Service, token: str, points: list[tuple[dict[str, Any], str | None]]
) -> list[dict[str, Any]]:
    """Restore each backup (to a time, where one is given), all asked for at once as a
    tenant would, then wait until every restored instance is ACTIVE and HEALTHY."""
    ids = [
        service.create(
            token,
            PROJECT,
            "restored",
            restorePoint={"backupRef": made["id"], **({"restore_time": when} if when else {})},
        )
        for made, when in points
    ]
    return [service.wait_for(token, PROJECT, i, support.active_and_healthy) for i in ids]


def delete(service: support.Service, token: str, *instances: dict[str, Any]) -> None:
    for instance in instances:
        service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance['id']}", token)


@pytest.mark.parametrize("datastore", POINT_IN_TIME)
def test_full_incremental_and_point_in_time_restores(
    service: support.Service, token: str, datastore: str
) -> None:
    source = _instance(service, token, datastore)

    def sql(instance: dict[str, Any], statement: str) -> list[tuple[Any, ...]]:
        return _sql(datastore, instance, statement)

    sql(source, "CREATE TABLE t (v int)")
    sql(source, "INSERT INTO t VALUES (1)")
    full = backup(service, token, source, "full")
    assert full["status"] == "COMPLETED" and full["checksum"].startswith("sha256:")
    assert full["size"] > 0
    # The tool's own name and version, as it says them.
    assert re.search(r"(pgBackRest|MariaDB server) \d+\.\d+", full["tool"]), full["tool"]
    sql(source, "INSERT INTO t VALUES (2)")
    incremental = backup(service, token, source, "incremental", incremental=1)
    assert incremental["status"] == "COMPLETED", incremental
    assert incremental["parent_id"] == full["id"] and incremental["kind"] == "incremental"
    sql(source, "INSERT INTO t VALUES (3)")
    made = [full, incremental]
    if datastore == "postgresql":  # pgBackRest's diff: all changes since the full backup
        differential = backup(service, token, source, "differential", differential=True)
        assert differential["status"] == "COMPLETED", differential
        assert (differential["kind"], differential["parent_id"]) == ("differential", full["id"])
        made.append(differential)
    time.sleep(1.2)
    between = support.restore_time_now()
    time.sleep(1.2)
    sql(source, "INSERT INTO t VALUES (4)")
    time.sleep(1.2)
    late = support.restore_time_now()  # after the last backup: only the logs reach it
    time.sleep(1.2)
    sql(source, "INSERT INTO t VALUES (5)")

    # A time after the incremental: its restore applies the increment on the full backup
    # (row 2, which the logs from the increment on do not hold), then the logs (row 3).
    restored = restore_all(
        service,
        token,
        [(full, None), (incremental, between), *[(b, None) for b in made[2:]]],
    )
    seen = [sql(r, "SELECT v FROM t ORDER BY v") for r in restored]
    if datastore == "postgresql":  # each restore's loan of the repository was taken back
        assert _named_acl_entries(Path(full["locationRef"]), recursive=True) == []
    expected = [[(1,)], [(1,), (2,), (3,)]]
    assert seen == expected + [[(1,), (2,), (3,)]] * len(made[2:])
    listed = service.request("GET", f"/v1.0/{PROJECT}/instances/{source['id']}/backups", token)
    assert {b["id"] for b in listed.body["backups"]} == {b["id"] for b in made}
    for extra in made[2:]:
        assert _delete_backup(service, token, extra) == 202
        _gone(service, token, extra)
    delete(service, token, *restored)
    _delete_in_order(service, token, source, full, incremental, late)


def _delete_backup(service: support.Service, token: str, made: dict[str, Any]) -> int:
    return service.request("DELETE", f"/v1.0/{PROJECT}/backups/{made['id']}", token).status


def _gone(service: support.Service, token: str, made: dict[str, Any]) -> None:
    deadline = time.monotonic() + 60
    while service.request("GET", f"/v1.0/{PROJECT}/backups/{made['id']}", token).status != 404:
        assert time.monotonic() < deadline, made
        time.sleep(0.3)


def _delete_in_order(
    service: support.Service,
    token: str,
    source: dict[str, Any],
    full: dict[str, Any],
    incremental: dict[str, Any],
    late: str,
) -> None:
    """A base goes after what builds on it; a live instance's newest full backup its
    tenant deletes is gone for the tenant at once, and from the repository once a newer
    full backup completes; a deleted instance's logs still reach a time after its last
    backup; the last backup of a deleted instance takes its repository."""
    refused = service.request("DELETE", f"/v1.0/{PROJECT}/backups/{full['id']}", token)
    assert refused.status == 409, refused.body
    assert "is the base of backup" in refused.body["conflictingRequest"]["message"]
    assert _delete_backup(service, token, incremental) == 202
    _gone(service, token, incremental)
    datastore = full["datastore"]["type"]
    expected = [(1,), (2,), (3,), (4,)]
    if datastore == "postgresql":
        full, late = _newest_full_deleted_then_replaced(service, token, source, full)
        expected.append((5,))
    delete(service, token, source)
    service.wait_gone(token, PROJECT, source["id"])
    after_delete = restore(service, token, full, late)
    assert _sql(datastore, after_delete, "SELECT v FROM t ORDER BY v") == expected
    delete(service, token, after_delete)
    service.wait_gone(token, PROJECT, after_delete["id"])
    assert _delete_backup(service, token, full) == 202
    _gone(service, token, full)
    assert not (service.state_dir / "backups" / source["id"]).exists()


def _newest_full_deleted_then_replaced(
    service: support.Service, token: str, source: dict[str, Any], full: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """pgBackRest keeps the newest full backup as the base of the archived logs: its
    DELETE is accepted and the tenant sees it gone, its set stays until a newer full
    backup completes. Returns the newer one, and a time after it the logs reach."""
    sets = Path(full["locationRef"]) / "backup"
    hidden_sets = {path.name for path in sets.glob("*/*F")}
    assert len(hidden_sets) == 1, hidden_sets
    assert _delete_backup(service, token, full) == 202
    gone = service.request("GET", f"/v1.0/{PROJECT}/backups/{full['id']}", token)
    assert gone.status == 404, gone.body
    listed = service.request("GET", f"/v1.0/{PROJECT}/instances/{source['id']}/backups", token)
    assert full["id"] not in {b["id"] for b in listed.body["backups"]}
    assert {path.name for path in sets.glob("*/*F")} == hidden_sets  # the tool's base stays
    newer = backup(service, token, source, "newer-full")
    assert (newer["status"], newer["kind"]) == ("COMPLETED", "full"), newer
    deadline = time.monotonic() + 60
    while hidden_sets & {path.name for path in sets.glob("*/*F")}:
        assert time.monotonic() < deadline, "the deleted backup's set stayed"
        time.sleep(0.3)
    time.sleep(1.2)
    late = support.restore_time_now()  # after the newer backup: its logs reach it
    time.sleep(1.2)
    _sql("postgresql", source, "INSERT INTO t VALUES (6)")
    return newer, late


def test_a_redis_snapshot_restores_its_keys_and_users(service: support.Service, token: str) -> None:
    source = _instance(service, token, "redis")
    client = redis.Redis(
        host=source["ip"][0], port=source["port"], username="app", password=PASSWORD
    )
    client.set("kept", "yes")
    made = backup(service, token, source, "snapshot")
    assert made["status"] == "COMPLETED"
    client.set("later", "no")
    copy = restore(service, token, made)
    restored = redis.Redis(host=copy["ip"][0], port=copy["port"], username="app", password=PASSWORD)
    assert sorted(restored.scan_iter()) == [b"kept"]
    refused = service.request(
        "POST",
        f"/v1.0/{PROJECT}/backups",
        token,
        {"backup": {"name": "i", "instance": source["id"], "incremental": 1}},
    )
    assert (
        refused.status == 400 and "not supported for redis" in refused.body["badRequest"]["message"]
    )
    delete(service, token, source, copy)


def test_a_damaged_backup_is_refused_and_a_failed_one_leaves_the_instance_active(
    service: support.Service, token: str
) -> None:
    source = _instance(service, token, "mariadb")
    made = backup(service, token, source, "to-damage")
    artifact = Path(made["locationRef"])
    with artifact.open("r+b") as handle:
        handle.seek(artifact.stat().st_size // 2)
        handle.write(b"\0garbage\0")
    body = {
        "instance": {
            "name": "from-damaged",
            "flavorRef": "1",
            "volume": {"size": 1},
            "restorePoint": {"backupRef": made["id"]},
        }
    }
    created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    failed = service.wait_for(
        token, PROJECT, created.body["instance"]["id"], lambda i: i["status"] == "ERROR"
    )
    assert "failed its checksum" in failed["fault"]["message"]

    # A time outside what is covered is refused at once, with the range there is.
    early = service.request(
        "POST",
        f"/v1.0/{PROJECT}/instances",
        token,
        {
            "instance": {
                **body["instance"],
                "restorePoint": {"backupRef": made["id"], "restore_time": "2001-01-01T00:00:00"},
            }
        },
    )
    assert early.status == 400 and " to " in early.body["badRequest"]["message"]

    # A guest that does not answer: the backup FAILED, never RUNNING, the instance ACTIVE.
    guest = int((service.state_dir / "instances" / source["id"] / "guest.pid").read_text())
    os.kill(guest, signal.SIGSTOP)
    try:
        silent = backup(service, token, source, "silent-guest", wait_healthy=False)
    finally:
        os.kill(guest, signal.SIGCONT)
    assert service.wait_for(token, PROJECT, source["id"], support.active_and_healthy)
    assert silent["status"] == "FAILED" and silent["fail_reason"]
    assert service.request("DELETE", f"/v1.0/{PROJECT}/backups/{silent['id']}", token).status == 202
    gone = service.request("GET", f"/v1.0/{PROJECT}/backups/{silent['id']}", token)
    assert gone.status == 404
    delete(service, token, source, failed)


def test_a_damaged_pgbackrest_set_is_refused(service: support.Service, token: str) -> None:
    """A pgBackRest set is checked file by file against the backup's checksum too."""
    source = _instance(service, token, "postgresql")
    made = backup(service, token, source, "set-to-damage")
    sets = sorted(Path(made["locationRef"]).glob("backup/*/*F/pg_data/global/pg_control*"))
    assert sets, made["locationRef"]
    with sets[-1].open("r+b") as handle:
        handle.seek(8)
        handle.write(b"\0garbage\0")
    created = service.request(
        "POST",
        f"/v1.0/{PROJECT}/instances",
        token,
        {
            "instance": {
                "name": "from-damaged-set",
                "flavorRef": "1",
                "volume": {"size": 1},
                "restorePoint": {"backupRef": made["id"]},
            }
        },
    )
    failed = service.wait_for(
        token, PROJECT, created.body["instance"]["id"], lambda i: i["status"] == "ERROR"
    )
    assert "failed its checksum" in failed["fault"]["message"]
    delete(service, token, source, failed)


def _used_backups(service: support.Service, token: str) -> int:
    limits = service.request("GET", f"/v1.0/{PROJECT}/limits", token).body["limits"]
    return int(next(entry for entry in limits if entry["verb"] == "ABSOLUTE")["used_backups"])


# Slow enough that a fresh MariaDB's backup (a few MB once compressed) streams for longer
# than a delete takes to land.
SLOW_RATE = 48 * 1024


def test_an_instance_deleted_while_its_backup_runs_releases_its_backup() -> None:
    """A backup slowed (TROVE_SVC_BACKUP_MAX_RATE) so that its instance's delete lands
    while the guest still writes it: the backup ends (FAILED, saying why) within the
    waiting limit, its task ends, it can be deleted, and the backup quota and the
    instance's repository are released."""
    service = support.Service(extra_env={"TROVE_SVC_BACKUP_MAX_RATE": str(SLOW_RATE)})
    service.start()
    try:
        token = service.token(PROJECT)
        source = _instance(service, token, "mariadb")
        repository = service.state_dir / "backups" / source["id"]
        body = {"backup": {"name": "cut-short", "instance": source["id"]}}
        answer = service.request("POST", f"/v1.0/{PROJECT}/backups", token, body)
        assert answer.status == 202, answer.body
        backup_id = answer.body["backup"]["id"]
        path = f"/v1.0/{PROJECT}/backups/{backup_id}"
        deadline = time.monotonic() + 60
        while not list(repository.glob("*.part")):  # the guest is writing it
            assert time.monotonic() < deadline, service.request("GET", path, token).body
            time.sleep(0.2)
        assert service.request("GET", path, token).body["backup"]["status"] == "BUILDING"
        assert _used_backups(service, token) == 1

        delete(service, token, source)
        deadline = time.monotonic() + 60
        while (shown := service.request("GET", path, token).body["backup"])["status"] not in (
            "FAILED",
            "COMPLETED",
        ):
            assert time.monotonic() < deadline, shown
            time.sleep(0.3)
        # Cut short mid-stream: it was not made, and says why.
        assert shown["status"] == "FAILED", shown
        assert "deleted while its backup ran" in shown["fail_reason"], shown
        service.wait_gone(token, PROJECT, source["id"])
        ended = {t["action"]: t["state"] for t in tasks_of(service, source["id"])}
        assert ended == {"create": "SUCCEEDED", "backup": "CANCELED", "delete": "SUCCEEDED"}
        assert not any(t["owner"] for t in tasks_of(service, source["id"]))
        # Nothing keeps the repository (a failed backup restores nothing): it goes, just
        # after the instance's records (which say whether a backup still keeps it).
        wait_until(lambda: not repository.exists(), 30, "the repository is removed")
        assert _used_backups(service, token) == 1  # until the backup is deleted

        assert _delete_backup(service, token, shown) == 202
        _gone(service, token, shown)
        assert _used_backups(service, token) == 0
    finally:
        service.cleanup()


@pytest.fixture
def s3_server() -> Iterator[str]:
    with moto_s3.running() as endpoint:
        yield endpoint


def test_backups_kept_in_s3_restore_when_the_repository_lost_them(s3_server: str) -> None:
    service = support.Service(extra_env={"TROVE_SVC_S3_ENDPOINT": s3_server})
    moto_s3.give_credentials(service.state_dir)
    s3 = moto_s3.client(s3_server)
    service.start()
    try:
        token = service.token(PROJECT)
        strategy = service.request(
            "POST",
            f"/v1.0/{PROJECT}/backup_strategies",
            token,
            {"backup_strategy": {"swift_container": "trove-backups"}},
        )
        assert strategy.status == 200 and strategy.body["backup_strategy"]["backend"] == "s3"
        source = _instance(service, token, "mariadb")
        _sql("mariadb", source, "CREATE TABLE t (v int)")
        _sql("mariadb", source, "INSERT INTO t VALUES (7)")
        made = backup(service, token, source, "offsite")
        assert made["status"] == "COMPLETED", made
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="trove-backups").get("Contents", [])]
        assert any(key.endswith(Path(made["locationRef"]).name) for key in keys), keys
        Path(made["locationRef"]).unlink()  # the repository lost it; the bucket has it
        copy = restore(service, token, made)
        assert _sql("mariadb", copy, "SELECT v FROM t") == [(7,)]
    finally:
        service.cleanup()


def _forge_backup_report(service: support.Service, instance_id: str, args: dict[str, Any]) -> None:
    """A backup report as whoever holds the instance can send one: sealed with the key in
    its guest's config, published with its guest's broker account."""
    config = json.loads((service.state_dir / "instances" / instance_id / "guest.json").read_text())
    envelope = Envelope.new("backup_report", args)
    key = seal.decode_key(config["key"])
    sealed = seal.seal(key, seal.report_from(instance_id), envelope.to_json())
    connection = pika.BlockingConnection(pika.URLParameters(config["transport_url"]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(topology.guest_exchange(instance_id), topology.REPORTS, sealed)
    finally:
        connection.close()


def _forged_backup(
    service: support.Service, token: str, instance: dict[str, Any], forged: dict[str, Any]
) -> dict[str, Any]:
    """A backup whose guest's report is forged: it lands before the guest's own."""
    body = {"backup": {"name": "forged", "instance": instance["id"]}}
    answer = service.request("POST", f"/v1.0/{PROJECT}/backups", token, body)
    assert answer.status == 202, answer.body
    backup_id = answer.body["backup"]["id"]
    _forge_backup_report(service, instance["id"], {"backup_id": backup_id, **forged})
    shown = service.backup_when_ended(token, PROJECT, backup_id)
    service.wait_for(token, PROJECT, instance["id"], support.active_and_healthy)
    return shown


def _named_acl_entries(path: Path, recursive: bool = False) -> list[str]:
    """The ACL entries `path` (and with `recursive`, everything below it) gives accounts
    by name (a loan to a restored instance's), each after the path that has it."""
    walk = ["--recursive"] if recursive else []
    listed = subprocess.run(
        ["getfacl", "--absolute-names", "--physical", *walk, str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found, holder = [], ""
    for line in listed.splitlines():
        if line.startswith("# file: "):
            holder = line.removeprefix("# file: ")
        elif line.startswith(("user:", "group:")) and line.split(":")[1]:
            found.append(f"{holder}: {line}")
    return found


def test_forged_backup_reports_reach_nothing_outside_their_instances_repository() -> None:
    """Whoever holds an instance can read its guest's key and forge its backup reports:
    one naming /, the state directory, ../.. or another directory as the backup's location
    (and a stanza and a bucket besides) gets a backup at the location the control plane
    derives, and instance delete, restore and backup delete act on that instance's
    repository alone."""
    service = support.Service()
    service.start()
    try:
        token = service.token(PROJECT)
        state = service.state_dir
        canary = state / "canary"
        canary.mkdir()
        (canary / "keep").write_text("another project's")
        source = _instance(service, token, "postgresql")
        repository = state / "backups" / source["id"]
        _sql("postgresql", source, "CREATE TABLE t (v int)")
        _sql("postgresql", source, "INSERT INTO t VALUES (1)")
        real = backup(service, token, source, "real")
        assert real["status"] == "COMPLETED", real
        with store(service) as db:
            label, checksum = db.execute(
                "SELECT label, checksum FROM backup WHERE id = ?", (real["id"],)
            ).fetchone()
        _sql("postgresql", source, "INSERT INTO t VALUES (2)")
        forged = []
        for where in ("/", str(state), "../..", str(canary)):
            made = _forged_backup(
                service,
                token,
                source,
                {
                    "state": "SAVING",
                    "label": label,
                    "tool": "pgBackRest 2.45",
                    "size": 1,
                    "checksum": checksum,
                    "consistent_at": time.time(),
                    "location": where,
                    "details": {"stanza": "../../..", "s3": {"bucket": "x", "prefix": where}},
                },
            )
            # Derived from the ids, whatever the report said (each step below acts there).
            assert (made["status"], made["locationRef"]) == ("COMPLETED", str(repository)), made
            forged.append(made)
        deadline = time.monotonic() + 120
        while any("pgbackrest" in p for p in processes_mentioning(source["id"])):
            assert time.monotonic() < deadline, "the guest's own backups did not end"
            time.sleep(0.5)

        copy = restore(service, token, forged[1])
        assert _sql("postgresql", copy, "SELECT v FROM t ORDER BY v") == [(1,)]
        for outside in (Path("/"), state, canary, state / "instances"):
            assert _named_acl_entries(outside) == [], outside
        delete(service, token, copy, source)
        service.wait_gone(token, PROJECT, copy["id"])
        service.wait_gone(token, PROJECT, source["id"])
        # The newest full backup of a deleted instance goes last, and takes the repository.
        for made in [real, *forged]:
            assert _delete_backup(service, token, made) == 202, made
            _gone(service, token, made)
        assert not repository.exists()
        assert (canary / "keep").read_text() == "another project's"
        for kept in ("trove-svc.db", "service.key", "broker.json", "instances", "backups"):
            assert (state / kept).exists(), kept
        assert service.request("GET", f"/v1.0/{PROJECT}/backups", token).status == 200
    finally:
        service.cleanup()
