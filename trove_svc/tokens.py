"""Local API tokens: issued once, kept only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from trove_svc.store.models import Token


@dataclass(frozen=True)
class Identity:
    project_id: str
    user: str
    is_admin: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(project_id: str, user: str, is_admin: bool, now: float) -> str:
    """Create a token and return it; this is the only time it is ever visible."""
    token = secrets.token_urlsafe(32)
    Token.create(
        token_hash=_digest(token),
        project_id=project_id,
        user=user,
        is_admin=is_admin,
        created_at=now,
    )
    return token


class LocalTokens:
    """Tokens from `trove-svc token create`, looked up in the store."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def identify(self, token: str) -> Identity | None:
        return identify(token, self._clock())


def identify(token: str, now: float) -> Identity | None:
    row = Token.get_or_none(Token.token_hash == _digest(token))
    if row is None or (row.expires_at is not None and row.expires_at < now):
        return None
    return Identity(project_id=row.project_id, user=row.user, is_admin=row.is_admin)
