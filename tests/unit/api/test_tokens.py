"""Tokens can be listed (never shown), revoked and made to expire; the API then refuses
them with 401."""

from __future__ import annotations

import falcon.testing
import pytest

from trove_svc.domain import errors
from trove_svc.security import tokens


def _ask(client: falcon.testing.TestClient, token: str) -> int:
    return client.simulate_get("/v1.0/p1/flavors", headers={"X-Auth-Token": token}).status_code


def test_a_token_expires(client: falcon.testing.TestClient) -> None:
    lasting = tokens.issue("p1", "alice", False, now=0.0, expires_in=10**12)
    expired = tokens.issue("p1", "alice", False, now=0.0, expires_in=1)
    assert _ask(client, lasting) == 200
    assert _ask(client, expired) == 401


def test_a_revoked_token_is_refused_and_listing_never_shows_a_token(
    client: falcon.testing.TestClient,
) -> None:
    token = tokens.issue("p1", "alice", False, now=0.0)
    assert _ask(client, token) == 200
    (row,) = tokens.listing()
    assert token not in str(row) and row["last_used"] is not None and row["revoked"] is None
    assert tokens.revoke(row["id"], now=5.0) == 1
    assert _ask(client, token) == 401
    assert tokens.listing()[0]["revoked"] is not None
    assert tokens.revoke(row["id"], now=6.0) == 0


def test_a_token_reads_as_a_value_on_a_command_line(client: falcon.testing.TestClient) -> None:
    # A token after "--os-token" that began with "-" would be read as an option.
    issued = [tokens.issue("p1", "alice", False, now=0.0) for _ in range(200)]
    assert not [token for token in issued if token.startswith("-")]
    assert len(set(issued)) == 200 and all(len(token) >= 43 for token in issued)


@pytest.mark.parametrize(("text", "seconds"), [("3600", 3600), ("90m", 5400), ("30d", 2592000)])
def test_durations(text: str, seconds: int) -> None:
    assert tokens.parse_duration(text) == seconds


def test_bad_durations_and_ids_are_refused() -> None:
    with pytest.raises(errors.BadRequest):
        tokens.parse_duration("soon")
    with pytest.raises(errors.BadRequest):
        tokens.revoke("abc", now=0.0)
