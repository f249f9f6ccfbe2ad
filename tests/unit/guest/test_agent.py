"""The guest answers sealed calls from the control plane, and nothing else."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.guest.test_lease import Watchdog
from trove_guest.agent import Agent
from trove_guest.config import GuestConfig
from trove_wire import contract, seal
from trove_wire.amqp import Delivery
from trove_wire.envelope import Envelope, Reply


class Driver:
    def health(self) -> tuple[str, str | None]:
        return "HEALTHY", None

    def list_databases(self) -> list[dict[str, Any]]:
        return [{"name": "orders"}]

    def create_users(self, users: list[dict[str, Any]]) -> None:
        raise contract.Conflict("User 'shop' already exists.")


@pytest.fixture
def agent(tmp_path: Any) -> Agent:
    config = GuestConfig(
        instance_id="i-1",
        transport_url="amqp://127.0.0.1:1/",
        key=seal.encode_key(seal.new_key()),
        datastore="redis",  # no failover: no lease
        connection={},
        data_dir=str(tmp_path),
        pid_file=str(tmp_path / "guest.pid"),
    )
    return Agent(config, Driver())


def _call(key: bytes, instance_id: str, envelope: Envelope) -> Delivery:
    body = seal.seal(key, seal.to_guest(instance_id), envelope.to_json())
    return Delivery(body=body, reply_to="reply.q", correlation_id="c-1")


def _reply(agent: Agent, body: bytes | None) -> Reply:
    assert body is not None
    return Reply.from_json(seal.open_sealed(agent._key, seal.reply_from("i-1", "c-1"), body))


def test_a_sealed_call_is_answered_sealed(agent: Agent) -> None:
    answer = agent.handle(_call(agent._key, "i-1", Envelope.new("list_databases", {})))
    assert _reply(agent, answer).result == [{"name": "orders"}]


def test_errors_cross_as_codes(agent: Agent) -> None:
    users = Envelope.new("create_users", {"users": [{"name": "shop", "password": "x" * 12}]})
    reply = _reply(agent, agent.handle(_call(agent._key, "i-1", users)))
    assert (reply.error_code, reply.error_message) == ("conflict", "User 'shop' already exists.")
    unknown = _reply(agent, agent.handle(_call(agent._key, "i-1", Envelope.new("rm_rf", {}))))
    assert unknown.error_code == "unknown_call"
    missing = _reply(agent, agent.handle(_call(agent._key, "i-1", Envelope.new("list_users", {}))))
    assert missing.error_code == "not_supported"


def test_forged_and_replayed_calls_get_no_answer(agent: Agent) -> None:
    envelope = Envelope.new("list_databases", {})
    assert agent.handle(_call(seal.new_key(), "i-1", envelope)) is None
    real = _call(agent._key, "i-1", envelope)
    assert agent.handle(real) is not None
    assert agent.handle(real) is None
    assert agent.refused.snapshot() == {"auth": 1, "replay": 1}


class FencingDriver(Driver):
    """A driver of a datastore that fails over: its guest keeps a lease."""

    def __init__(self) -> None:
        self.fenced = False

    def fence_writes(self, base_dir: str) -> bool:
        self.fenced = True
        return True

    def take_writes(self, base_dir: str) -> None:
        self.fenced = False

    @staticmethod
    def hard_stop(base_dir: str) -> tuple[Any, int]:
        return f"{base_dir}/server.pid", 9


def _cast(key: bytes, instance_id: str, envelope: Envelope) -> Delivery:
    return Delivery(body=seal.seal(key, seal.to_guest(instance_id), envelope.to_json()))


def test_a_datastore_that_does_not_fail_over_asks_for_no_lease(agent: Agent) -> None:
    assert agent.lease is None
    heartbeat = agent.heartbeat()
    assert heartbeat.beat is None


def test_a_sealed_grant_reaches_the_lease_and_a_forged_one_does_not(agent: Agent) -> None:
    watchdog = Watchdog()
    fencing = Agent(
        replace(agent.config, datastore="postgresql"),
        FencingDriver(),
        watchdog=lambda _pid_file, _signal: watchdog,
    )
    assert fencing.lease is not None
    beat = fencing.lease.new_beat()
    grant = Envelope.new("lease_grant", {"beat": beat, "lease": 10.0, "resume": True})
    assert fencing.handle(_cast(seal.new_key(), "i-1", grant)) is None  # forged
    assert fencing.lease.deadline is None
    assert fencing.handle(_cast(fencing._key, "i-1", grant)) is None  # no answer to a cast
    assert fencing.lease.deadline is not None and watchdog.armed is not None
    assert fencing.handle(_cast(fencing._key, "i-1", Envelope.new("rm_rf", {}))) is None
    assert fencing.refused.snapshot() == {"auth": 1, "malformed": 1}


@contextlib.contextmanager
def _heartbeats_of(
    beating_agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> Iterator[queue.Queue[contract.Heartbeat]]:
    """The agent's heartbeat loop on a thread of its own, each heartbeat put in the queue
    yielded instead of sent; the loop must still run at the end, and end on the stop."""
    sent: queue.Queue[contract.Heartbeat] = queue.Queue()
    monkeypatch.setattr(beating_agent, "report", lambda beat: sent.put(beat) or True)
    beating = threading.Thread(target=beating_agent.send_heartbeats)
    beating.start()
    try:
        yield sent
        assert beating.is_alive()
    finally:
        beating_agent.stop()
        beating.join(timeout=10)
    assert not beating.is_alive()


def test_a_sealed_ask_for_a_heartbeat_sends_one_now_and_a_forged_one_does_not(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = Agent(replace(agent.config, heartbeat_interval=3600), Driver())
    with _heartbeats_of(waiting, monkeypatch) as sent:
        assert sent.get(timeout=10).operating_status == "HEALTHY"  # the first, at start
        ask = Envelope.new("report_now", {})
        assert waiting.handle(_cast(seal.new_key(), "i-1", ask)) is None  # forged
        with pytest.raises(queue.Empty):
            sent.get(timeout=0.5)
        assert waiting.handle(_cast(waiting._key, "i-1", ask)) is None  # no answer to a cast
        assert sent.get(timeout=10).operating_status == "HEALTHY"  # not an hour later
        assert waiting.refused.snapshot() == {"auth": 1}


class FailingOnceDriver(Driver):
    def __init__(self) -> None:
        self.checks = 0

    def health(self) -> tuple[str, str | None]:
        self.checks += 1
        if self.checks == 1:
            raise RuntimeError("a failure its driver did not foresee")
        return "HEALTHY", None


def test_a_heartbeat_that_could_not_be_made_leaves_the_next_ones_coming(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    beating_agent = Agent(replace(agent.config, heartbeat_interval=0.05), FailingOnceDriver())
    with _heartbeats_of(beating_agent, monkeypatch) as sent:
        assert [sent.get(timeout=10).operating_status for _ in range(2)] == ["HEALTHY"] * 2
