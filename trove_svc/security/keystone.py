"""Keystone v3 token validation, for deployments with an OpenStack cloud.

A token validates itself (Keystone's default policy lets a token's subject read it), so
no service credentials are needed. Answers are cached briefly, never past the token's
expiry; a refused token is cached too, so a flood of bad tokens does not reach Keystone.
"""

from __future__ import annotations

import datetime
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from trove_svc.security.tokens import Identity


class KeystoneUnavailable(ConnectionError):
    """Keystone did not answer; the request cannot be authenticated now."""


class KeystoneTokens:
    def __init__(
        self, url: str, cache_seconds: float, admin_role: str, clock: Callable[[], float]
    ) -> None:
        self._url = url.rstrip("/")
        self._cache_seconds = cache_seconds
        self._admin_role = admin_role
        self._clock = clock
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        self._lock = threading.Lock()

    def identify(self, token: str) -> Identity | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        identity, expires_at = self._validate(token)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (min(now + self._cache_seconds, expires_at), identity)
        return identity

    def _validate(self, token: str) -> tuple[Identity | None, float]:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in __init__)
            f"{self._url}/v3/auth/tokens",
            headers={"X-Auth-Token": token, "X-Subject-Token": token},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (as above)
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                return None, self._clock() + self._cache_seconds
            raise KeystoneUnavailable(f"Keystone answered {exc.code}") from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise KeystoneUnavailable(f"Keystone is unreachable: {exc}") from exc
        token_info = body.get("token", {})
        project = token_info.get("project")
        if not project:  # an unscoped or domain-scoped token has no project to act in
            return None, self._clock() + self._cache_seconds
        roles = {role.get("name") for role in token_info.get("roles", [])}
        identity = Identity(
            project_id=str(project["id"]),
            user=str(token_info.get("user", {}).get("name", "")),
            is_admin=self._admin_role in roles,
        )
        return identity, _expiry(token_info.get("expires_at"), self._clock())


def _expiry(expires_at: str | None, now: float) -> float:
    if not expires_at:
        return now
    parsed = datetime.datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    return parsed.timestamp()
