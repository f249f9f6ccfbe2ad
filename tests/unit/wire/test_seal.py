"""Seals: a message opens only with its key, for its instance and its purpose, once, and
only while it is fresh."""

from __future__ import annotations

import json

import pytest

from trove_wire import seal


def test_a_sealed_message_opens_with_its_key_and_purpose() -> None:
    key = seal.new_key()
    body = seal.seal(key, seal.report_from("i-1"), b"payload")
    assert b"payload" not in body
    assert seal.party_of(body) == "i-1"
    assert seal.open_sealed(key, seal.report_from("i-1"), body) == b"payload"


@pytest.mark.parametrize(
    "purpose",
    [
        seal.report_from("i-2"),  # another instance's id
        seal.to_guest("i-1"),  # turned around: a report replayed as a call
        seal.reply_from("i-1", "c-1"),  # a reply
        seal.CAST,
    ],
)
def test_a_message_does_not_open_for_another_purpose(purpose: seal.Purpose) -> None:
    key = seal.new_key()
    body = seal.seal(key, seal.report_from("i-1"), b"payload")
    with pytest.raises(seal.Refused) as refused:
        seal.open_sealed(key, purpose, body)
    assert refused.value.reason == "auth"


def test_the_wrong_key_and_a_tampered_body_are_refused() -> None:
    key = seal.new_key()
    body = seal.seal(key, seal.to_guest("i-1"), b"payload")
    with pytest.raises(seal.Refused, match="auth"):
        seal.open_sealed(seal.new_key(), seal.to_guest("i-1"), body)
    frame = json.loads(body)
    frame["c"] = frame["c"][:-4] + ("AAAA" if frame["c"][-4:] != "AAAA" else "BBBB")
    with pytest.raises(seal.Refused, match="auth"):
        seal.open_sealed(key, seal.to_guest("i-1"), json.dumps(frame).encode())


@pytest.mark.parametrize("body", [b"", b"[]", b"{}", b'{"v": 1}', b'{"v": 2, "party": "x"}'])
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(seal.Refused, match="malformed"):
        seal.open_sealed(seal.new_key(), seal.to_guest("x"), body)


def test_the_replay_guard_refuses_repeats_and_stale_or_future_times() -> None:
    now = [1000.0]
    guard = seal.ReplayGuard(window=60, skew=5, clock=lambda: now[0])
    guard.check("m-1", 999.0)
    with pytest.raises(seal.Refused, match="replay"):
        guard.check("m-1", 999.0)
    with pytest.raises(seal.Refused, match="clock"):
        guard.check("m-2", 1000.0 + 10**7)
    with pytest.raises(seal.Refused, match="clock"):
        guard.check("m-3", 900.0)
    now[0] = 1100.0  # m-1 is out of the window: its id is forgotten, its time refuses it
    with pytest.raises(seal.Refused, match="clock"):
        guard.check("m-1", 999.0)
    guard.check("m-4", 1099.0)


def test_keys_encode_and_decode() -> None:
    key = seal.new_key()
    assert seal.decode_key(seal.encode_key(key)) == key
    with pytest.raises(ValueError):
        seal.decode_key(seal.encode_key(b"short"))
