"""A guest, or a tenant with root on an instance, reaches nothing but its own instance.

Each attack is tried as an attacker holding instance A would, against a deployment on a
private RabbitMQ node (with the management plugin), with B as the victim.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import psycopg
import pytest

from tests import support
from tests.broker_node import BrokerNode
from tests.deployments import (
    PROJECT,
    create,
    deployment,
    instance_row,
    start,
    store,
)
from trove_wire import seal, topology
from trove_wire.envelope import Envelope

pytestmark = [pytest.mark.integration, pytest.mark.long]


@pytest.fixture(scope="module")
def world(shared_node: BrokerNode) -> Iterator[dict[str, Any]]:
    """A deployment with two PostgreSQL instances, A (the attacker's) and B."""
    service = deployment(shared_node)
    started: list[support.Service] = []
    start(started, service)
    token = service.token(PROJECT)
    ids = [create(service, token, name) for name in ("a", "b")]
    for instance_id in ids:
        service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
    yield {"service": service, "token": token, "a": ids[0], "b": ids[1], "node": shared_node}
    service.cleanup()


def guest_config(world: dict[str, Any], which: str) -> dict[str, Any]:
    path = world["service"].state_dir / "instances" / world[which] / "guest.json"
    config: dict[str, Any] = json.loads(path.read_text())
    return config


def refused(action: Any) -> int:
    """Run `action` on a fresh channel; the broker's reply code if it closed the channel."""
    try:
        action()
    except pika.exceptions.ChannelClosedByBroker as exc:
        return int(exc.reply_code)
    return 0


def test_a_guest_account_reaches_only_its_own_queue(world: dict[str, Any]) -> None:
    a = guest_config(world, "a")
    connection = pika.BlockingConnection(pika.URLParameters(a["transport_url"]))
    try:

        def attempt(do: Any) -> int:
            return refused(lambda: do(connection.channel()))

        b_queue = topology.guest_queue(world["b"])
        assert attempt(lambda ch: ch.basic_consume(b_queue, lambda *_: None)) == 403
        for queue in (topology.reports_queue(world["a"]), topology.reports_queue(world["b"])):
            assert attempt(lambda ch, q=queue: ch.basic_consume(q, lambda *_: None)) == 403
        assert attempt(lambda ch: ch.basic_consume(topology.TASKMANAGER, lambda *_: None)) == 403

        def publish_to_taskmanager(ch: Any) -> None:
            ch.confirm_delivery()
            ch.basic_publish("", topology.TASKMANAGER, b"forged cast")

        assert attempt(publish_to_taskmanager) == 403
        assert attempt(lambda ch: ch.queue_declare("attacker.queue")) == 403
        assert attempt(lambda ch: ch.exchange_declare("attacker.exchange")) == 403
        own_queue = topology.guest_queue(world["a"])
        assert attempt(lambda ch: ch.queue_bind(own_queue, topology.TO_GUEST, "b-key")) == 403
        own_exchange = topology.guest_exchange(world["a"])
        assert attempt(lambda ch: ch.queue_bind(own_queue, own_exchange, topology.REPORTS)) == 403
        # Another guest's exchange (its reports, its replies) is out of reach.
        b_exchange = topology.guest_exchange(world["b"])

        def publish_to_b(ch: Any) -> None:
            ch.confirm_delivery()
            ch.basic_publish(b_exchange, topology.REPORTS, b"x")

        assert attempt(publish_to_b) == 403
        # What a guest may do still works: publish to its own exchange.
        assert attempt(lambda ch: ch.basic_publish(own_exchange, topology.REPORTS, b"x")) == 0
    finally:
        connection.close()


def _metric(service: support.Service, name: str, **labels: str) -> float:
    return support.metric(service, f"{name}_total", **labels)


def _capture_a_real_report(world: dict[str, Any], instance_id: str) -> bytes:
    """One of B's real heartbeats, copied off B's exchange by the broker's admin."""
    node: BrokerNode = world["node"]
    vhost = world["service"].settings().vhost
    connection = pika.BlockingConnection(pika.URLParameters(node.amqp_url(vhost=vhost)))
    try:
        channel = connection.channel()
        tap = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(tap, topology.guest_exchange(instance_id), topology.REPORTS)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            _method, _props, body = channel.basic_get(tap, auto_ack=True)
            if body is not None and seal.party_of(body) == instance_id:
                return bytes(body)
            time.sleep(0.1)
    finally:
        connection.close()
    raise AssertionError("no heartbeat of B seen")


def test_forged_replayed_and_future_reports_change_nothing(world: dict[str, Any]) -> None:
    service: support.Service = world["service"]
    a, b = guest_config(world, "a"), guest_config(world, "b")
    forged_args = {"operating_status": "SHUTDOWN", "disk_used_bytes": 987654321}
    before = {
        reason: _metric(service, "trove_messages_refused", receiver="conductor", reason=reason)
        for reason in ("auth", "replay", "clock")
    }
    real = _capture_a_real_report(world, world["b"])

    def send(config: dict[str, Any], body: bytes) -> None:
        """Published with the account in `config`, to the only exchange it may write."""
        connection = pika.BlockingConnection(pika.URLParameters(config["transport_url"]))
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            exchange = topology.guest_exchange(config["instance_id"])
            channel.basic_publish(exchange, topology.REPORTS, body)
        finally:
            connection.close()

    # By A, under B's id, sealed with A's own key (the only key A has).
    under_b = Envelope.new("heartbeat", forged_args)
    send(a, seal.seal(seal.decode_key(a["key"]), seal.report_from(world["b"]), under_b.to_json()))
    # B's real report, replayed (by whoever holds B's account: a tenant with root on B).
    send(b, real)
    # Dated far in the future (sealed with B's key: even B itself may not do this).
    future = Envelope("heartbeat", forged_args, sent_at=time.time() + 10**7)
    send(b, seal.seal(seal.decode_key(b["key"]), seal.report_from(world["b"]), future.to_json()))

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = {
            reason: _metric(service, "trove_messages_refused", receiver="conductor", reason=reason)
            for reason in before
        }
        if all(after[reason] > before[reason] for reason in before):
            break
        time.sleep(0.2)
    assert all(after[reason] == before[reason] + 1 for reason in before), (before, after)
    with store(service) as db:
        row = db.execute(
            "SELECT operating_status, disk_used_bytes, last_sent_at FROM service_status"
            " WHERE instance_id = ?",
            (world["b"],),
        ).fetchone()
    assert row["operating_status"] == "HEALTHY" and row["disk_used_bytes"] != 987654321
    assert row["last_sent_at"] < time.time() + 5
    # B's own reports still land.
    first = row["last_sent_at"]
    time.sleep(2.5)
    with store(service) as db:
        later = db.execute(
            "SELECT last_sent_at FROM service_status WHERE instance_id = ?", (world["b"],)
        ).fetchone()[0]
    assert later > first


def _as_root(world: dict[str, Any], program: str) -> str:
    """What `COPY ... FROM PROGRAM` shows a tenant who enabled root on A."""
    service: support.Service = world["service"]
    enabled = service.request(
        "POST", f"/v1.0/{PROJECT}/instances/{world['a']}/root", world["token"], {}
    )
    assert enabled.status == 200, enabled.body
    row = instance_row(service, world["a"])
    with psycopg.connect(
        host=row["host"],
        port=row["port"],
        user=enabled.body["user"]["name"],
        password=enabled.body["user"]["password"],
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute("CREATE TEMP TABLE out (line text)")
        conn.execute(
            psycopg.sql.SQL("COPY out FROM PROGRAM {}").format(
                psycopg.sql.Literal(f"({program}) 2>&1; true")
            )
        )
        return "\n".join(row[0] for row in conn.execute("SELECT line FROM out"))


def test_a_root_tenant_finds_no_credentials_but_its_own(world: dict[str, Any]) -> None:
    service: support.Service = world["service"]
    state = service.state_dir
    a_dir = state / "instances" / world["a"]
    b_dir = state / "instances" / world["b"]
    own = _as_root(world, f"cat {a_dir}/guest.json")
    assert f"guest-{world['a']}" in own  # its own guest's account: expected
    for path in (
        state / "trove-svc.db",
        state / "broker.json",
        state / "service.key",
        b_dir / "guest.json",
    ):
        assert "Permission denied" in _as_root(world, f"cat {path}"), path
    assert "Permission denied" in _as_root(world, f"ls {b_dir}")
    assert "Permission denied" in _as_root(world, f"ls {state}")
    account = json.loads((state / "broker.json").read_text())
    found = _as_root(
        world, f"grep -rl {account['password']} /tmp /etc /var/log /var/tmp 2>/dev/null | head"
    )
    assert found.strip() == ""
    assert "trove-" in _as_root(world, "id -un")  # the instance's own account, not root
    # A's guest agent runs as A's own account too (the owner of A's directory), not root.
    agent = int((a_dir / "guest.pid").read_text().split()[0])
    uids = next(
        line.split()[1:]
        for line in Path(f"/proc/{agent}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    assert {int(uid) for uid in uids} == {a_dir.stat().st_uid} and a_dir.stat().st_uid != 0
    # The deployment's secrets and store are the service's alone.
    for private in ("broker.json", "service.key", "trove-svc.db", "trove-svc.db-wal"):
        assert (state / private).stat().st_mode & 0o077 == 0, private


def _grep(root: Path, needles: list[str]) -> list[str]:
    found = subprocess.run(
        ["grep", "-rlaF", *[arg for n in needles for arg in ("-e", n)], str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.split()


def test_no_password_is_anywhere_in_the_clear(world: dict[str, Any]) -> None:
    service: support.Service = world["service"]
    token = world["token"]
    create_password = "Zebra-Create-Pass-8137"
    user_password = "Yak-UserCreate-Pass-4462"
    changed_password = "Gnu-ChangedUser-Pass-5521"
    # A tenant who logs every statement still finds no password in the server's log.
    group = service.request(
        "POST",
        f"/v1.0/{PROJECT}/configurations",
        token,
        {
            "configuration": {
                "name": "log-everything",
                "values": {"log_statement": "all", "log_min_duration_statement": 0},
                "datastore": {"type": "postgresql"},
            }
        },
    )
    assert group.status == 200, group.body
    body = {
        "instance": {
            "name": "secretive",
            "flavorRef": "1",
            "volume": {"size": 1},
            "datastore": {"type": "postgresql"},
            "users": [{"name": "app", "password": create_password}],
            "configuration": group.body["configuration"]["id"],
        }
    }
    created = service.request("POST", f"/v1.0/{PROJECT}/instances", token, body)
    assert created.status == 200
    instance_id = created.body["instance"]["id"]
    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
    answer = service.request(
        "POST",
        f"/v1.0/{PROJECT}/instances/{instance_id}/users",
        token,
        {"users": [{"name": "other", "password": user_password}]},
    )
    assert answer.status == 202, answer.body
    row = instance_row(service, instance_id)
    host, port = row["host"], row["port"]
    psycopg.connect(
        host=host, port=port, user="other", password=user_password, dbname="postgres"
    ).close()
    answer = service.request(
        "PUT",
        f"/v1.0/{PROJECT}/instances/{instance_id}/users",
        token,
        {"users": [{"name": "other", "password": changed_password}]},
    )
    assert answer.status == 202, answer.body
    # Both work ...
    for user, password in (("app", create_password), ("other", changed_password)):
        psycopg.connect(
            host=host, port=port, user=user, password=password, dbname="postgres"
        ).close()
    # ... the server logs what the users do ...
    with psycopg.connect(
        host=host, port=port, user="app", password=create_password, dbname="postgres"
    ) as conn:
        conn.execute("SELECT 'a statement the log shows'")
    server_log = "".join(
        path.read_text(errors="replace")
        for path in (service.state_dir / "instances" / instance_id).rglob("*.log")
    )
    assert "a statement the log shows" in server_log
    # ... and neither is written anywhere in the clear: the broker's data, the store, the
    # Ansible artifacts, every log.
    node: BrokerNode = world["node"]
    needles = [create_password, user_password, changed_password]
    assert _grep(node.base, needles) == []
    assert _grep(service.state_dir, needles) == []
    # The instance's own key and broker password are in its guest's config, and only there.
    config_path = service.state_dir / "instances" / instance_id / "guest.json"
    config = json.loads(config_path.read_text())
    broker_password = config["transport_url"].split(":")[2].split("@")[0]
    found = _grep(service.state_dir, [config["key"], broker_password])
    assert found == [str(config_path)]
    assert _grep(node.base, [config["key"], broker_password]) == []


def test_the_brokers_stock_guest_account_can_be_retired(world: dict[str, Any]) -> None:
    """The broker as Debian installs it has guest/guest, an administrator that logs in
    from loopback, where a local instance's datastore runs."""
    service: support.Service = world["service"]
    node: BrokerNode = world["node"]
    assert node.api("PUT", "/api/users/guest", {"password": "guest", "tags": "administrator"})[
        0
    ] in (201, 204)
    whoami = (
        f"curl -s -o /dev/null -w '%{{http_code}}' -u guest:guest {node.management_url}/api/whoami"
    )
    assert _as_root(world, whoami) == "200"  # the attack, as it stands on such a broker

    def setup(*flags: str) -> str:
        out = subprocess.run(
            [str(support.VENV_BIN / "trove-svc"), "setup", *flags],
            env=service.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return out.stderr

    assert "guest/guest still logs in" in setup()
    assert "still logs in" not in setup("--retire-stock-guest")
    assert _as_root(world, whoami) == "401"
    assert node.api("GET", "/api/users/guest")[0] == 404
    # The deployment goes on with its own account: a guest call still answers.
    listed = service.request(
        "GET", f"/v1.0/{PROJECT}/instances/{world['a']}/databases", world["token"]
    )
    assert listed.status == 200, listed.body


def test_deleting_an_instance_removes_its_broker_account_and_key(world: dict[str, Any]) -> None:
    service: support.Service = world["service"]
    token = world["token"]
    instance_id = create(service, token, "short-lived")
    service.wait_for(token, PROJECT, instance_id, support.active_and_healthy, timeout=120)
    assert support.broker_user_exists(service, f"guest-{instance_id}")
    assert instance_row(service, instance_id)["guest_key"]
    assert (
        service.request("DELETE", f"/v1.0/{PROJECT}/instances/{instance_id}", token).status == 202
    )
    service.wait_gone(token, PROJECT, instance_id)
    assert not support.broker_user_exists(service, f"guest-{instance_id}")
    assert instance_row(service, instance_id) == {}
    assert support.leftovers(service, instance_id, None) == []
