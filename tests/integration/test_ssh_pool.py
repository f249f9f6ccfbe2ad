"""The ssh provider end to end, on a pool of two hosts: each an sshd of its own on a
loopback address (tests/ssh_pool.py), reached only through SSH as an operator's inventory
says. Instances are placed by room, built, used with their own users, resized, given a
configuration group, restarted and deleted through the API, and leave nothing on their
host; a create that fits nowhere answers 409; a host that stops answering in the middle of
a create fails it with a fault that names the host, and the next create goes to the other
host. Backups made on a host are copied to the control plane's repository and S3, and
restore onto the other host, to a time too. A PostgreSQL replica on the other host follows
its source over the hosts' addresses, takes over in a switchover, and hands the writes
back in a failover once its host stops."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import redis

from tests import moto_s3, processes, ssh_pool, support

pytestmark = [pytest.mark.integration, pytest.mark.long]

ROOT = Path(__file__).resolve().parents[2]

PROJECT = "pool"
# Ports no other deployment of the run takes: the last two for the hosts' sshd, the rest
# for the instances.
POOL_PORTS = support.reserved_ports(1)
SSH_FIRST_PORT = POOL_PORTS[1] - 1
USER = {"name": "clerk", "password": "Clerk-pw-1-long", "databases": [{"name": "shop"}]}
# The pool lends trove-svc 2048 MB on pool-a and 1024 MB on pool-b (4 GB of disk each);
# flavors small, medium and large take 512, 1024 and 2048 MB.
SMALL, MEDIUM, LARGE = "1", "2", "3"
POOL_A_ADDRESSES = support.local_addresses(POOL_PORTS[0])


@pytest.fixture(scope="module")
def pool() -> Iterator[ssh_pool.Pool]:
    # A short directory: PostgreSQL's socket path below it must stay under 108 bytes.
    # pool-a gives each instance an address of its own (a loopback one: nothing to add on
    # the host); pool-b's share its address, each at a port of its own.
    hosts = ssh_pool.two_hosts(
        support.shared_tmp_dir("tsp-"),
        first_port=SSH_FIRST_PORT,
        addresses=(POOL_A_ADDRESSES, ""),
    )
    hosts.start()
    yield hosts
    hosts.cleanup()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3.running() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def service(pool: ssh_pool.Pool, s3_endpoint: str) -> Iterator[support.Service]:
    svc = support.Service(
        extra_env={
            "TROVE_SVC_COMPUTE_PROVIDER": "ssh",
            "TROVE_SVC_HOST_POOL": str(pool.inventory),
            "TROVE_SVC_S3_ENDPOINT": s3_endpoint,
            **support.port_range_env(POOL_PORTS[0], SSH_FIRST_PORT - 1),
        }
    )
    moto_s3.give_credentials(svc.state_dir)
    svc.setup()  # makes the service's account, which the pool's key is handed to
    pool.lend_key_to(svc.settings().service_user)
    svc.start()
    yield svc
    svc.cleanup()


@pytest.fixture(scope="module")
def token(service: support.Service) -> str:
    return service.token(PROJECT)


@pytest.fixture(scope="module")
def admin(service: support.Service) -> str:
    return service.token("operators", admin=True)


def _api(service: support.Service, token: str, method: str, path: str, body: Any = None) -> Any:
    return service.request(method, f"/v1.0/{PROJECT}{path}", token, body)


def _create(
    service: support.Service, token: str, name: str, datastore: str, flavor: str = SMALL
) -> Any:
    body = {
        "instance": {
            "name": name,
            "flavorRef": flavor,
            "volume": {"size": 1},
            "datastore": {"type": datastore},
            "databases": [{"name": "shop"}],
            "users": [USER],
        }
    }
    return _api(service, token, "POST", "/instances", body)


def _healthy(service: support.Service, token: str, instance_id: str) -> dict[str, Any]:
    return service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=240)


def _settled(service: support.Service, token: str, instance_id: str) -> dict[str, Any]:
    """ACTIVE and HEALTHY again after an action that first leaves ACTIVE."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            _api(service, token, "GET", f"/instances/{instance_id}").body["instance"]["status"]
            != "ACTIVE"
        ):
            break
        time.sleep(0.1)
    return _healthy(service, token, instance_id)


def _server(service: support.Service, admin: str, instance_id: str) -> dict[str, Any]:
    found = service.request("GET", f"/v1.0/operators/mgmt/instances/{instance_id}", admin)
    assert found.status == 200, found.body
    return dict(found.body["instance"]["server"])


def _hosts(service: support.Service, admin: str) -> dict[str, dict[str, Any]]:
    listed = service.request("GET", "/v1.0/operators/mgmt/hosts", admin)
    assert listed.status == 200, listed.body
    return {h["name"]: h for h in listed.body["hosts"]}


def _query(datastore: str, instance: dict[str, Any]) -> Any:
    """Log in as the created user at the address the API gives, and ask who we are."""
    if datastore == "postgresql":
        return _pg(instance, "SELECT current_user, inet_server_addr()::text")[0]
    return _mariadb(instance, "SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1), @@bind_address")[0]


def _mariadb_replicas_refused(service: support.Service, token: str, source_id: str) -> None:
    """A MariaDB replica is made from its source's files, on its source's host: not on a
    pool, where placement puts it on another host; refused, saying so."""
    body = {"instance": {"name": "a-replica", "replica_of": source_id}}
    resp = _api(service, token, "POST", "/instances", body)
    assert resp.status == 400, resp.body
    message = resp.body["badRequest"]["message"]
    assert "Replicas of mariadb copy their source's files" in message, message


def _attach_a_group(service: support.Service, token: str, instance: dict[str, Any]) -> None:
    values = {"work_mem": 12345}
    body = {"configuration": {"name": "g", "values": values, "datastore": {"type": "postgresql"}}}
    group = _api(service, token, "POST", "/configurations", body)
    assert group.status == 200, group.body
    attach = {"instance": {"configuration": group.body["configuration"]["id"]}}
    assert _api(service, token, "PUT", f"/instances/{instance['id']}", attach).status == 202
    assert _work_mem(instance) == "12345"


def _detach_the_group(service: support.Service, token: str, instance: dict[str, Any]) -> None:
    assert _work_mem(instance) == "12345"
    detach = {"instance": {"configuration": None}}
    assert _api(service, token, "PUT", f"/instances/{instance['id']}", detach).status == 202
    assert _work_mem(instance) != "12345"
    _settled(service, token, instance["id"])


def _work_mem(instance: dict[str, Any]) -> str:
    """The PostgreSQL instance's work_mem, as its user sees it."""
    ((setting,),) = _pg(instance, "SELECT setting FROM pg_settings WHERE name = 'work_mem'")
    return str(setting)


def _addressed_as_their_hosts_say(instances: dict[str, Any], pool: ssh_pool.Pool) -> None:
    """On pool-a, PostgreSQL is on an address of its own at 5432 (and listens there); on
    pool-b, MariaDB shares the host's address at a port of the range."""
    (own,) = instances["postgresql"]["ip"]
    assert ipaddress.IPv4Address(own) in ipaddress.IPv4Network(POOL_A_ADDRESSES)
    assert instances["postgresql"]["port"] == 5432
    assert _query("postgresql", instances["postgresql"]) == (USER["name"], f"{own}/32")
    assert instances["mariadb"]["ip"] == [pool.host("pool-b").address]
    assert POOL_PORTS[0] <= instances["mariadb"]["port"] < SSH_FIRST_PORT


def _inventory_lists_them_on_their_hosts(
    service: support.Service,
    made: dict[str, str],
    servers: dict[str, dict[str, Any]],
    pool: ssh_pool.Pool,
) -> None:
    """The inventory plugin gives each instance its pool host's address and connection."""
    config = pool.directory / "trove_svc.yml"
    config.write_text(f"plugin: trove_svc\nstate_dir: {service.state_dir}\n")
    env = {**service.env(), "ANSIBLE_INVENTORY_PLUGINS": str(ROOT / "inventory_plugins")}
    listed = subprocess.run(
        [str(support.VENV_BIN / "ansible-inventory"), "-i", str(config), "--list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    hostvars = json.loads(listed.stdout)["_meta"]["hostvars"]
    for datastore, instance_id in made.items():
        host = pool.host(servers[datastore]["host"])
        # ansible-inventory marks values read from the store as unsafe (not templated).
        found = {
            name: value["__ansible_unsafe"]
            if isinstance(value, dict) and "__ansible_unsafe" in value
            else value
            for name, value in hostvars[instance_id].items()
        }
        assert (found["trove_server"], found["ansible_host"]) == (host.name, host.address)
        assert found["ansible_port"] == host.port
        assert found["ansible_ssh_private_key_file"] == str(pool.client_key)
        assert found["trove_provider"] == "ssh"


def _left_on(host: ssh_pool.PoolHost, instance_id: str) -> list[str]:
    """What of an instance is still on its host: files, processes, its OS account."""
    left = [str(p) for p in host.instances_dir.glob(f"{instance_id}*")]
    left += processes.processes_mentioning(instance_id)
    account = "trove-" + instance_id.replace("-", "")[:16]
    try:
        pwd.getpwnam(account)
        left.append(f"account {account}")
    except KeyError:
        pass
    return left


def _resized_as_one_made_before_backups(
    service: support.Service, token: str, pool: ssh_pool.Pool, instance_id: str
) -> dict[str, Any]:
    """Resize the PostgreSQL instance to large (pool-a has exactly the room for it), made
    to look as one made before pool hosts kept backups (no repository, no pgBackRest
    settings): the resize gives it both, and a backup of it then works."""
    instance_dir = pool.host("pool-a").instances_dir / instance_id
    shutil.rmtree(instance_dir / "backups")
    (instance_dir / "postgresql" / "pgbackrest.conf").unlink()
    resize = {"resize": {"flavorRef": LARGE}}
    resp = _api(service, token, "POST", f"/instances/{instance_id}/action", resize)
    assert resp.status == 202, resp.body
    resized = _settled(service, token, instance_id)
    assert resized["flavor"]["id"] == LARGE
    assert _query("postgresql", resized)[0] == USER["name"]
    backed_up = service.backup_ended(token, PROJECT, instance_id, "after-the-resize")
    assert backed_up["status"] == "COMPLETED", backed_up
    return _settled(service, token, instance_id)


def test_instances_are_placed_built_used_resized_and_removed_on_pool_hosts(
    service: support.Service, token: str, admin: str, pool: ssh_pool.Pool
) -> None:
    made = {}
    for datastore, flavor in (("postgresql", MEDIUM), ("mariadb", SMALL)):
        created = _create(service, token, f"on-pool-{datastore}", datastore, flavor)
        assert created.status == 200, created.body
        made[datastore] = created.body["instance"]["id"]
    instances = {ds: _healthy(service, token, iid) for ds, iid in made.items()}

    # Most free memory first: the first went to pool-a (2048 MB free), the second to pool-b
    # (1024 MB free on each; the one with fewer instances).
    servers = {ds: _server(service, admin, iid) for ds, iid in made.items()}
    assert servers["postgresql"]["host"] == "pool-a", servers
    assert servers["mariadb"]["host"] == "pool-b", servers
    assert servers["postgresql"]["provider"] == "ssh"
    for datastore, instance in instances.items():
        host = pool.host(servers[datastore]["host"])
        assert (host.instances_dir / instance["id"]).is_dir()
        assert _query(datastore, instance)[0] == USER["name"]
    _addressed_as_their_hosts_say(instances, pool)

    _inventory_lists_them_on_their_hosts(service, made, servers, pool)

    _mariadb_replicas_refused(service, token, made["mariadb"])

    resized = _resized_as_one_made_before_backups(service, token, pool, made["postgresql"])
    # A resize the host has no room for is refused before anything runs.
    too_big = {"resize": {"flavorRef": LARGE}}
    resp = _api(service, token, "POST", f"/instances/{made['mariadb']}/action", too_big)
    assert resp.status == 409, resp.body
    assert "host has no room" in resp.body["conflictingRequest"]["message"]

    hosts = _hosts(service, admin)
    assert hosts["pool-a"]["memory_mb"] == {"total": 2048, "used": 2048}
    assert hosts["pool-b"]["memory_mb"] == {"total": 1024, "used": 512}
    assert hosts["pool-a"]["instances"] == 1 and hosts["pool-a"]["reachable"] is True

    # A medium instance fits on neither host now: 409, and nothing is made.
    resp = _create(service, token, "does-not-fit", "postgresql", flavor=MEDIUM)
    assert resp.status == 409, resp.body
    assert "No host in the pool has room" in resp.body["conflictingRequest"]["message"]
    listed = _api(service, token, "GET", "/instances").body["instances"]
    assert sorted(i["name"] for i in listed) == ["on-pool-mariadb", "on-pool-postgresql"]

    # A configuration group on a pool host: live when the attach answers, kept through the
    # restart below, taken away by the detach.
    _attach_a_group(service, token, resized)
    for datastore, instance_id in made.items():
        resp = _api(service, token, "POST", f"/instances/{instance_id}/action", {"restart": {}})
        assert resp.status == 202, resp.body
        restarted = _settled(service, token, instance_id)
        assert _query(datastore, restarted)[0] == USER["name"]
    _detach_the_group(service, token, resized)

    for instance_id in made.values():
        assert _api(service, token, "DELETE", f"/instances/{instance_id}").status == 202
    for datastore, instance_id in made.items():
        service.wait_gone(token, PROJECT, instance_id, timeout=120)
        host = pool.host(servers[datastore]["host"])
        assert _left_on(host, instance_id) == []
    assert {h["instances"] for h in _hosts(service, admin).values()} == {0}


def _pg(instance: dict[str, Any], statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user=USER["name"],
        password=USER["password"],
        dbname="shop",
        autocommit=True,
    ) as conn:
        cursor = conn.execute(statement)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def _restored(
    service: support.Service, token: str, admin: str, backup_id: str, when: str | None = None
) -> dict[str, Any]:
    """A restore of the backup (to a time, where one is given), once HEALTHY; it must be on
    pool-b, the other host than its source's."""
    point = {"backupRef": backup_id, **({"restore_time": when} if when else {})}
    instance_id = service.create(token, PROJECT, "restored", restorePoint=point)
    assert _server(service, admin, instance_id)["host"] == "pool-b"
    return _healthy(service, token, instance_id)


def _backup_sets(repository: Path) -> list[str]:
    """The backup sets in a pgBackRest repository, by their labels."""
    labels = re.compile(r"\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?")
    found = (repository / "backup" / "trove").iterdir()
    return sorted(p.name for p in found if labels.fullmatch(p.name))


def _delete_backup(service: support.Service, token: str, backup_id: str) -> None:
    resp = service.request("DELETE", f"/v1.0/{PROJECT}/backups/{backup_id}", token)
    assert resp.status == 202, resp.body
    deadline = time.monotonic() + 60
    while service.request("GET", f"/v1.0/{PROJECT}/backups/{backup_id}", token).status != 404:
        assert time.monotonic() < deadline, f"backup {backup_id} was not deleted"
        time.sleep(0.3)


def _delete(service: support.Service, token: str, *instances: dict[str, Any]) -> None:
    for instance in instances:
        assert _api(service, token, "DELETE", f"/instances/{instance['id']}").status == 202
    for instance in instances:
        service.wait_gone(token, PROJECT, instance["id"], timeout=120)


def _an_increment_is_copied_and_deleted_from_both(
    service: support.Service, token: str, source: dict[str, Any], on_host: Path, copy: Path
) -> None:
    increment = service.backup_ended(token, PROJECT, source["id"], "increment", incremental=1)
    assert increment["status"] == "COMPLETED", increment
    assert len(_backup_sets(on_host)) == 2 and _backup_sets(copy) == _backup_sets(on_host)
    _delete_backup(service, token, increment["id"])
    assert len(_backup_sets(on_host)) == 1 and _backup_sets(copy) == _backup_sets(on_host)


def _only_what_the_instance_reads_is_copied(
    service: support.Service, token: str, source: dict[str, Any], on_host: Path, copy: Path
) -> None:
    """The copy reads the host's repository as the instance's own account: a file there it
    cannot read (root's) fails the backup and is not copied; a link out is not copied."""
    secret = on_host / "roots-only"
    secret.write_text("not the instance's")
    secret.chmod(0o600)
    (on_host / "out").symlink_to("/etc")
    refused = service.backup_ended(token, PROJECT, source["id"], "not-copied")
    assert refused["status"] == "FAILED", refused
    assert not (copy / secret.name).exists() and not os.path.lexists(copy / "out")
    secret.unlink()
    (on_host / "out").unlink()
    _healthy(service, token, source["id"])


Sql = Callable[[dict[str, Any], str], list[tuple[Any, ...]]]


def _backed_up_on_pool_a(
    service: support.Service, token: str, admin: str, datastore: str, sql: Sql
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A medium instance, which goes to pool-a (pool-a keeps 1024 MB free, as pool-b has,
    and pool-b has fewer instances), with a table holding 1, and a backup of it."""
    created = _create(service, token, f"{datastore}-with-backups", datastore, MEDIUM)
    assert created.status == 200, created.body
    source = _healthy(service, token, created.body["instance"]["id"])
    assert _server(service, admin, source["id"])["host"] == "pool-a"
    sql(source, "CREATE TABLE t (v int)")
    sql(source, "INSERT INTO t VALUES (1)")
    made = service.backup_ended(token, PROJECT, source["id"], "on-pool-a")
    assert made["status"] == "COMPLETED", made
    return source, made


def _a_time_between_rows_2_and_3(source: dict[str, Any], sql: Sql) -> str:
    sql(source, "INSERT INTO t VALUES (2)")
    time.sleep(1)
    when = support.restore_time_now()
    time.sleep(1)
    sql(source, "INSERT INTO t VALUES (3)")
    return when


def test_backups_on_a_pool_host_restore_onto_the_other_host_to_a_time_and_from_s3(
    service: support.Service, token: str, admin: str, pool: ssh_pool.Pool, s3_endpoint: str
) -> None:
    """A backup is made on the instance's host, copied into the control plane's repository
    (the repository host: this machine) and to the project's bucket; restores onto the
    other host read that copy, to a time through the logs copied when asked, or the bucket's
    copy once the repository lost the backup's files."""
    s3 = moto_s3.client(s3_endpoint)
    strategy = {"backup_strategy": {"swift_container": "trove-backups"}}
    assert _api(service, token, "POST", "/backup_strategies", strategy).status == 200
    source, made = _backed_up_on_pool_a(service, token, admin, "postgresql", _pg)
    on_host = pool.host("pool-a").instances_dir / source["id"] / "backups"
    copy = service.state_dir / "backups" / source["id"]
    for repository in (on_host, copy):
        assert (repository / "backup" / "trove" / "backup.info").is_file(), repository
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="trove-backups").get("Contents", [])]
    assert any(f"/{source['id']}/backup/trove/" in key for key in keys), keys

    when = _a_time_between_rows_2_and_3(source, _pg)
    to_a_time = _restored(service, token, admin, made["id"], when)
    assert _pg(to_a_time, "SELECT v FROM t ORDER BY v") == [(1,), (2,)]
    # It read the copy made on its host, in root's directory beside the instances'
    # (pgBackRest named it for the logs it replayed), removed once it was restored.
    instances_b = pool.host("pool-b").instances_dir
    data = instances_b / to_a_time["id"] / "postgresql" / "data"
    auto_conf = (data / "postgresql.auto.conf").read_text()
    assert f"--repo1-path={instances_b}/.restores/{to_a_time['id']}-0 " in auto_conf, auto_conf
    assert list((instances_b / ".restores").iterdir()) == []
    _delete(service, token, to_a_time)

    _an_increment_is_copied_and_deleted_from_both(service, token, source, on_host, copy)

    _only_what_the_instance_reads_is_copied(service, token, source, on_host, copy)

    # The repository lost the backup's files; the bucket has them.
    shutil.rmtree(copy / "backup")
    from_s3 = _restored(service, token, admin, made["id"])
    assert _pg(from_s3, "SELECT v FROM t ORDER BY v") == [(1,)]

    _delete_backup(service, token, made["id"])
    _delete(service, token, source, from_s3)
    assert _api(service, token, "DELETE", "/backup_strategies").status == 202
    for name in ("pool-a", "pool-b"):
        left = {p.name for p in pool.host(name).instances_dir.iterdir()}
        assert left <= {".restores"}, left


def _mariadb(instance: dict[str, Any], statement: str) -> list[tuple[Any, ...]]:
    conn = pymysql.connect(
        host=instance["ip"][0],
        port=instance["port"],
        user=USER["name"],
        password=USER["password"],
        database="shop",
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(statement)
            return [tuple(row) for row in cursor.fetchall()]
    finally:
        conn.close()


def test_a_mariadb_backup_on_a_pool_host_restores_onto_the_other_host_to_a_time(
    service: support.Service, token: str, admin: str, pool: ssh_pool.Pool
) -> None:
    """MariaDB's repository (mariadb-backup's files, and the binary logs its guest archives
    there) copied from pool-a, and restored to a time on pool-b."""
    source, made = _backed_up_on_pool_a(service, token, admin, "mariadb", _mariadb)
    assert (service.state_dir / "backups" / source["id"] / f"{made['id']}.xbstream.zst").is_file()
    when = _a_time_between_rows_2_and_3(source, _mariadb)
    to_a_time = _restored(service, token, admin, made["id"], when)
    assert _mariadb(to_a_time, "SELECT v FROM t ORDER BY v") == [(1,), (2,)]
    _delete(service, token, source, to_a_time)


def _pg_eventually(instance: dict[str, Any], rows: list[int], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if [v for (v,) in _pg(instance, "SELECT v FROM t ORDER BY v")] == rows:
                return
        except psycopg.Error:
            pass
        time.sleep(0.3)
    raise AssertionError(f"never: {what}")


def _source_of(service: support.Service, token: str, instance_id: str) -> str | None:
    shown = _api(service, token, "GET", f"/instances/{instance_id}").body["instance"]
    return (shown.get("replica_of") or {}).get("id")


# Nothing in the pool test's network is at this address.
STRANGER = "127.0.0.254"


def _admitted(instance: dict[str, Any], user: str, from_address: str) -> bool:
    """Whether the instance's server, asked by `user` for a replication connection from
    `from_address`, asks for a password (a host rule admits it) or refuses at once (none
    does). PostgreSQL's startup message, sent from a socket bound to that address: a
    client library cannot choose the address it connects from, and on loopback every
    connection would come from 127.0.0.1."""
    fields = {"user": user, "database": "replication", "replication": "true"}
    body = struct.pack("!I", 3 << 16) + b"".join(
        k.encode() + b"\0" + v.encode() + b"\0" for k, v in fields.items()
    )
    with socket.socket() as conn:
        conn.settimeout(5)
        conn.bind((from_address, 0))
        conn.connect((instance["ip"][0], instance["port"]))
        conn.sendall(struct.pack("!I", len(body) + 5) + body + b"\0")
        reply = conn.recv(4096)
    if reply[:1] == b"R":  # an authentication request
        return True
    assert b"no pg_hba.conf entry" in reply, reply
    return False


def _members_admit_only_each_other(
    source: dict[str, Any], replica: dict[str, Any], pool: ssh_pool.Pool
) -> None:
    """Each admits the other's replication account, from the other's addresses only; no
    other account (the tenant's own user) and no other address."""
    pool_a, pool_b = pool.host("pool-a").address, pool.host("pool-b").address
    replicas_account = "os_repl_" + replica["id"].replace("-", "")[:16]
    sources_account = "os_repl_" + source["id"].replace("-", "")[:16]
    assert _admitted(source, replicas_account, pool_b)
    assert not _admitted(source, replicas_account, STRANGER)
    assert not _admitted(source, USER["name"], pool_b)
    assert not _admitted(source, sources_account, pool_b)
    assert _admitted(replica, sources_account, pool_a)
    assert _admitted(replica, sources_account, source["ip"][0])
    assert not _admitted(replica, sources_account, STRANGER)


def _power_off(host: ssh_pool.PoolHost, instance_id: str) -> None:
    """The host stops: its sshd with every session, and the instance's processes (its
    server, its guest agent)."""
    host.stop()
    for pid in processes.pids_mentioning(instance_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_a_replica_on_the_other_host_takes_over_then_hands_back_when_its_host_stops(
    service: support.Service, token: str, admin: str, pool: ssh_pool.Pool
) -> None:
    """PostgreSQL on pool-a, its replica placed on pool-b, copying and following it over
    the hosts' addresses, each admitting the other for replication by its addresses alone;
    a switchover makes the replica the source; then pool-b stops, and the old source,
    failed over to, takes the writes with every row."""
    created = _create(service, token, "pg-first", "postgresql")
    assert created.status == 200, created.body
    source = _healthy(service, token, created.body["instance"]["id"])
    assert _server(service, admin, source["id"])["host"] == "pool-a"
    _pg(source, "CREATE TABLE t (v int)")
    _pg(source, "INSERT INTO t VALUES (1)")
    body = {"instance": {"name": "pg-second", "replica_of": source["id"]}}
    made = _api(service, token, "POST", "/instances", body)
    assert made.status == 200, made.body
    replica = _healthy(service, token, made.body["instance"]["id"])
    assert _server(service, admin, replica["id"])["host"] == "pool-b"
    _pg_eventually(replica, [1], "the replica has its source's row")
    _pg(source, "INSERT INTO t VALUES (2)")
    _pg_eventually(replica, [1, 2], "the replica follows its source")

    _members_admit_only_each_other(source, replica, pool)
    pool_a, pool_b = pool.host("pool-a"), pool.host("pool-b")

    _action(service, token, replica["id"], "promote_to_replica_source")
    service.wait_for(
        token, PROJECT, replica["id"], lambda i: i["status"] == "ACTIVE" and "replica_of" not in i
    )
    _healthy(service, token, replica["id"])
    assert _source_of(service, token, source["id"]) == replica["id"]
    _pg(replica, "INSERT INTO t VALUES (3)")
    _pg_eventually(source, [1, 2, 3], "the old source follows the new one")

    _power_off(pool_b, replica["id"])
    try:
        service.wait_for(
            token,
            PROJECT,
            source["id"],
            lambda i: i["status"] == "ACTIVE" and "replica_of" not in i,
            timeout=120,
        )
        _healthy(service, token, source["id"])
        _pg(source, "INSERT INTO t VALUES (4)")
        _pg_eventually(source, [1, 2, 3, 4], "the failed-over source takes writes")
        failover = _ended(service, token, replica["id"], "eject")
        assert failover["state"] == "SUCCEEDED", failover
        assert failover["requested_by"] == "trove-svc (automatic failover)", failover
    finally:
        pool_b.start(pool.client_key)
    # The old source waits to rejoin as the new source's replica: it goes first.
    _delete(service, token, replica)
    _delete(service, token, source)
    assert _left_on(pool_b, replica["id"]) == [] and _left_on(pool_a, source["id"]) == []


def test_a_redis_replica_on_the_other_host_follows_its_source(
    service: support.Service, token: str, admin: str, pool: ssh_pool.Pool
) -> None:
    """Redis on pool-a, its replica placed on pool-b: it follows over the hosts' addresses
    and takes no writes of its own."""
    user = {"name": USER["name"], "password": USER["password"]}
    spec = {"flavorRef": SMALL, "volume": {"size": 1}, "datastore": {"type": "redis"}}
    body = {"instance": {"name": "redis-first", "users": [user], **spec}}
    made = _api(service, token, "POST", "/instances", body)
    assert made.status == 200, made.body
    source = _healthy(service, token, made.body["instance"]["id"])
    assert _server(service, admin, source["id"])["host"] == "pool-a"
    writer = redis.Redis(
        host=source["ip"][0],
        port=source["port"],
        socket_timeout=3,
        username=user["name"],
        password=user["password"],
    )
    writer.set("k1", "v1")
    body = {"instance": {"name": "redis-second", "replica_of": source["id"]}}
    made = _api(service, token, "POST", "/instances", body)
    assert made.status == 200, made.body
    replica = _healthy(service, token, made.body["instance"]["id"])
    assert _server(service, admin, replica["id"])["host"] == "pool-b"
    # Redis copies no ACL users: the replica's own admin (its guest's, which the operator
    # can read on the host) sees the data.
    guest = pool.host("pool-b").instances_dir / replica["id"] / "guest.json"
    connection = json.loads(guest.read_text())["connection"]
    reader = redis.Redis(
        host=connection["host"],
        port=connection["port"],
        username=connection["user"],
        password=connection["password"],
        socket_timeout=3,
    )
    writer.set("k2", "v2")
    deadline = time.monotonic() + 60
    while reader.get("k2") != b"v2" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert (reader.get("k1"), reader.get("k2")) == (b"v1", b"v2")
    with pytest.raises(redis.ReadOnlyError):
        reader.set("mine", "no")
    _delete(service, token, replica)
    _delete(service, token, source)


def _ended(service: support.Service, token: str, instance_id: str, action: str) -> dict[str, Any]:
    """The instance's newest task of `action`, once it ended."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = _api(service, token, "GET", f"/instances/{instance_id}/tasks").body["tasks"]
        found = [t for t in listed if t["action"] == action]
        if found and found[-1]["finished"] is not None:
            return dict(found[-1])
        time.sleep(0.3)
    raise AssertionError(f"no {action} task of {instance_id} ended")


def _action(service: support.Service, token: str, instance_id: str, action: str) -> None:
    resp = _api(service, token, "POST", f"/instances/{instance_id}/action", {action: {}})
    assert resp.status == 202, resp.body


def _wait_for_step(
    service: support.Service, token: str, instance_id: str, prefix: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        instance = _api(service, token, "GET", f"/instances/{instance_id}").body["instance"]
        if str(instance.get("current_step", "")).startswith(prefix):
            return dict(instance)
        assert instance["status"] == "BUILD", instance
        time.sleep(0.05)
    raise AssertionError(f"{instance_id} never reached a step of {prefix}")


def test_a_host_that_stops_answering_fails_its_create_and_is_skipped(
    service: support.Service, token: str, admin: str, pool: ssh_pool.Pool
) -> None:
    created = _create(service, token, "on-a-host-that-goes", "postgresql")
    assert created.status == 200, created.body
    lost_id = created.body["instance"]["id"]
    assert _server(service, admin, lost_id)["host"] == "pool-a"
    # The build is on the host, setting up the datastore, when the host goes away.
    _wait_for_step(service, token, lost_id, "postgresql :")
    pool.host("pool-a").stop()

    failed = service.wait_for(
        token, PROJECT, lost_id, lambda i: i["status"] == "ERROR", timeout=120
    )
    assert "pool-a" in failed["fault"]["message"], failed["fault"]
    assert "unreachable" in failed["fault"]["message"], failed["fault"]
    hosts = _hosts(service, admin)
    assert hosts["pool-a"]["reachable"] is False, hosts
    assert hosts["pool-a"]["unreachable_reason"]

    # pool-a still has the most room (1536 MB free to pool-b's 1024) but does not answer:
    # the next create goes to pool-b, and is built there.
    created = _create(service, token, "on-the-other-host", "mariadb")
    assert created.status == 200, created.body
    other_id = created.body["instance"]["id"]
    assert _server(service, admin, other_id)["host"] == "pool-b"
    other = _healthy(service, token, other_id)
    assert _query("mariadb", other)[0] == USER["name"]

    # Once pool-a answers again, it is used again; the failed instance is deleted from it
    # and leaves nothing there.
    pool.host("pool-a").start(pool.client_key)
    assert _api(service, token, "DELETE", f"/instances/{lost_id}").status == 202
    service.wait_gone(token, PROJECT, lost_id, timeout=120)
    assert _left_on(pool.host("pool-a"), lost_id) == []
    assert _hosts(service, admin)["pool-a"]["reachable"] is True
    assert _api(service, token, "DELETE", f"/instances/{other_id}").status == 202
    service.wait_gone(token, PROJECT, other_id, timeout=120)
    assert _left_on(pool.host("pool-b"), other_id) == []


def test_a_host_that_answers_with_another_key_is_not_trusted(
    service: support.Service, token: str, pool: ssh_pool.Pool
) -> None:
    """A man in the middle (here: a known_hosts that knows another key for pool-a) gets
    no build, and so none of the instance's secrets."""
    known = pool.known_hosts.read_text()
    stranger = pool.directory / "stranger_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    other_key = Path(f"{stranger}.pub").read_text()
    host = pool.host("pool-a")
    pool.known_hosts.write_text(
        "".join(
            f"[{host.address}]:{host.port} {other_key}"
            if line.startswith(f"[{host.address}]")
            else line + "\n"
            for line in known.splitlines()
        )
    )
    try:
        created = _create(service, token, "behind-a-stranger", "postgresql")
        assert created.status == 200, created.body
        instance_id = created.body["instance"]["id"]
        failed = service.wait_for(
            token, PROJECT, instance_id, lambda i: i["status"] == "ERROR", timeout=120
        )
        assert "pool-a" in failed["fault"]["message"], failed["fault"]
        assert not (host.instances_dir / instance_id).exists()
    finally:
        pool.known_hosts.write_text(known)
    assert _api(service, token, "DELETE", f"/instances/{instance_id}").status == 202
    service.wait_gone(token, PROJECT, instance_id, timeout=120)
    assert _left_on(host, instance_id) == []
