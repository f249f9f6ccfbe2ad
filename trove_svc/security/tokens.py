"""Local API tokens: issued once, kept only as a SHA-256 digest, listed by a short id
(the digest's first characters, which tell nothing of the token), revocable, and
optionally expiring."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trove_svc.domain import errors
from trove_svc.domain.wire_time import iso
from trove_svc.store.models import Token

ID_LENGTH = 12
# A token's last use is written at most this often.
USE_RESOLUTION = 60.0
_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Identity:
    project_id: str
    user: str
    is_admin: bool


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str) -> float:
    """Seconds from "3600", "90m", "12h" or "30d"."""
    match = _DURATION.fullmatch(text.strip())
    if not match or int(match.group(1)) <= 0:
        raise errors.BadRequest(f"{text!r} is not a duration: use 3600, 90m, 12h or 30d.")
    return int(match.group(1)) * _UNITS[match.group(2)]


def issue(
    project_id: str, user: str, is_admin: bool, now: float, expires_in: float | None = None
) -> str:
    """Create a token and return it; this is the only time it is ever visible.

    Hexadecimal, so a token never begins with "-": command lines such as
    `openstack --os-token <token>` would take one that did for an option."""
    token = secrets.token_hex(32)
    Token.create(
        token_hash=_digest(token),
        project_id=project_id,
        user=user,
        is_admin=is_admin,
        created_at=now,
        expires_at=None if expires_in is None else now + expires_in,
    )
    return token


def listing(project_id: str | None = None) -> list[dict[str, Any]]:
    """Every token (or a project's), never the token itself."""
    query = Token.select().order_by(Token.created_at)
    if project_id is not None:
        query = query.where(Token.project_id == project_id)
    return [
        {
            "id": row.token_hash[:ID_LENGTH],
            "project": row.project_id,
            "user": row.user,
            "admin": row.is_admin,
            "created": iso(row.created_at),
            "last_used": iso(row.last_used_at),
            "expires": iso(row.expires_at),
            "revoked": iso(row.revoked_at),
        }
        for row in query
    ]


def revoke(token_id: str, now: float) -> int:
    """Revoke the token whose id is `token_id`; returns how many (0 or 1)."""
    if len(token_id) < ID_LENGTH or not re.fullmatch(r"[0-9a-f]+", token_id):
        raise errors.BadRequest(f"A token id is {ID_LENGTH} or more hex digits.")
    revoked: int = (
        Token.update(revoked_at=now)
        .where(Token.token_hash.startswith(token_id) & Token.revoked_at.is_null())
        .execute()
    )
    return revoked


class LocalTokens:
    """Tokens from `trove-svc token create`, looked up in the store."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def identify(self, token: str) -> Identity | None:
        return identify(token, self._clock())


def identify(token: str, now: float) -> Identity | None:
    row = Token.get_or_none(Token.token_hash == _digest(token))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at < now:
        return None
    if row.last_used_at is None or row.last_used_at < now - USE_RESOLUTION:
        Token.update(last_used_at=now).where(Token.token_hash == row.token_hash).execute()
    return Identity(project_id=row.project_id, user=row.user, is_admin=row.is_admin)
