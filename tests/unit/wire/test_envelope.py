from __future__ import annotations

import pytest

from trove_wire.envelope import Context, Envelope, MalformedMessage, Reply


def test_envelope_round_trips_through_json() -> None:
    sent = Envelope.new(
        "instance_create",
        {"instance_id": "i-1"},
        Context(project="p", user="u", request_id="req-1"),
        clock=lambda: 42.5,
    )
    received = Envelope.from_json(sent.to_json())
    assert received == sent
    assert received.sent_at == 42.5 and received.version == 1


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"version": 1}',
        b'{"version": 99, "method": "x", "args": {}, "id": "1", "sent_at": 1}',
        b'{"version": 1, "method": "x", "args": [], "id": "1", "sent_at": "soon"}',
    ],
)
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        Envelope.from_json(body)


def test_reply_carries_errors() -> None:
    reply = Reply.from_json(Reply(error_code="not_supported", error_message="no").to_json())
    assert reply.error_code == "not_supported" and reply.result is None
