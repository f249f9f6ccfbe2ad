"""The deployment's place on RabbitMQ: its account, its vhost, and its guests' accounts.

`trove-svc setup` makes a dedicated account with a generated password (kept in a 0600
file, never logged) and a vhost of the deployment's own; the running service uses only
that account. Each instance gets an account of its own through the management HTTP API
when it is built, removed with the instance: it may consume its own queue and publish to
its own exchange, nothing else (see `trove_wire.topology`). A policy limits every guest's
reports queue (`report_queue_policy`).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from trove_svc.domain import errors
from trove_svc.process.settings import Settings
from trove_svc.security import private_files
from trove_wire import topology

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    user: str
    password: str


def load_account(path: Path) -> Account | None:
    try:
        raw = json.loads(path.read_text())
        return Account(user=str(raw["user"]), password=str(raw["password"]))
    except (OSError, ValueError, KeyError):
        return None


def save_account(path: Path, account: Account) -> None:
    private_files.write(path, json.dumps({"user": account.user, "password": account.password}))


def named_account(transport_url: str) -> Account | None:
    """The account the transport URL names (one the operator made), if it names one."""
    parts = urlsplit(transport_url)
    if parts.username is None:
        return None
    return Account(unquote(parts.username), unquote(parts.password or ""))


def amqp_url(settings: Settings, account: Account | None, named_account_wins: bool = True) -> str:
    """The URL to connect with: the transport's host and port, the deployment's vhost, and
    `account` (unless the transport URL names one and `named_account_wins`)."""
    parts = urlsplit(settings.transport_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    if parts.username is not None and (named_account_wins or account is None):
        credentials = parts.netloc.rsplit("@", 1)[0] + "@"
    elif account is not None:
        credentials = f"{quote(account.user, safe='')}:{quote(account.password, safe='')}@"
    else:
        credentials = ""
    vhost = "/" + quote(settings.vhost, safe="")
    return urlunsplit((parts.scheme, credentials + host, vhost, "", ""))


# Every guest's broker account is named so; nothing else of a deployment is.
GUEST_USER_PREFIX = "guest-"


def guest_user(instance_id: str) -> str:
    return GUEST_USER_PREFIX + instance_id


def guest_permissions(instance_id: str) -> dict[str, str]:
    """Consume its own queue, publish to its own exchange; declare and bind nothing."""
    return {
        "configure": "^$",
        "write": f"^{re.escape(topology.guest_exchange(instance_id))}$",
        "read": f"^{re.escape(topology.guest_queue(instance_id))}$",
    }


REPORT_QUEUE_POLICY = "trove-svc-reports"


def report_queue_policy(backlog: int) -> dict[str, Any]:
    """Every guest's reports queue: at most `backlog` reports waiting, past which the broker
    refuses new ones (the old ones stay); a report delivered `MAX_ATTEMPTS` times without
    being settled goes to the dead letters (`REPORTS_DEAD`)."""
    return {
        "pattern": f"^{re.escape(topology.REPORTS_PREFIX)}",
        "apply-to": "queues",
        "priority": 0,
        "definition": {
            "max-length": backlog,
            "overflow": "reject-publish",
            "delivery-limit": topology.MAX_DELIVERIES,
            "dead-letter-exchange": topology.DEAD_LETTERS,
            "dead-letter-routing-key": topology.REPORTS,
        },
    }


class ManagementRefused(errors.ServiceUnavailable):
    """The management API refused the account (401, 403): it may not do that."""


class BrokerAdmin:
    """The few management HTTP API calls the deployment needs."""

    def __init__(self, management_url: str, account: Account, timeout: float = 10) -> None:
        # One base URL per broker node (comma-separated): users, vhosts and permissions are
        # the cluster's, so any node that answers will do.
        self._bases = [url.strip().rstrip("/") for url in management_url.split(",")]
        token = base64.b64encode(f"{account.user}:{account.password}".encode()).decode()
        self._auth = f"Basic {token}"
        self._timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        for base in self._bases:
            try:
                return self._request_at(base, method, path, body)
            except (urllib.error.URLError, OSError) as exc:
                LOG.warning("RabbitMQ's management API at %s is unreachable (%s)", base, exc)
        raise errors.ServiceUnavailable(
            f"RabbitMQ's management API at {', '.join(self._bases)} is unreachable."
        )

    def _request_at(self, base: str, method: str, path: str, body: dict[str, Any] | None) -> Any:
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's setting)
            base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if method == "DELETE" and exc.code == 404:
                return None
            refused = ManagementRefused if exc.code in (401, 403) else errors.ServiceUnavailable
            raise refused(
                f"RabbitMQ's management API answered {exc.code} to {method} {path.split('/')[2]}."
            ) from exc
        return json.loads(payload) if payload else None

    def ensure_vhost(self, vhost: str) -> None:
        self._request("PUT", f"/api/vhosts/{quote(vhost, safe='')}", {})

    def ensure_user(self, user: str, password: str, tags: str = "") -> None:
        body = {"password": password, "tags": tags}
        self._request("PUT", f"/api/users/{quote(user, safe='')}", body)

    def set_permissions(self, vhost: str, user: str, permissions: dict[str, str]) -> None:
        path = f"/api/permissions/{quote(vhost, safe='')}/{quote(user, safe='')}"
        self._request("PUT", path, permissions)

    def set_policy(self, vhost: str, name: str, policy: dict[str, Any]) -> None:
        path = f"/api/policies/{quote(vhost, safe='')}/{quote(name, safe='')}"
        self._request("PUT", path, policy)

    def queue_depths(self, vhost: str) -> dict[str, int]:
        """Messages in each queue of `vhost`, as the broker's statistics last saw them
        (every few seconds)."""
        path = f"/api/queues/{quote(vhost, safe='')}?columns=name,messages"
        rows = self._request("GET", path) or []
        return {str(row["name"]): int(row.get("messages") or 0) for row in rows}

    def delete_user(self, user: str) -> None:
        self._request("DELETE", f"/api/users/{quote(user, safe='')}")

    def delete_vhost(self, vhost: str) -> None:
        self._request("DELETE", f"/api/vhosts/{quote(vhost, safe='')}")

    def users(self) -> list[str]:
        return [str(row["name"]) for row in self._request("GET", "/api/users") or []]

    def users_of(self, vhost: str) -> list[str]:
        """The accounts with permissions on `vhost`."""
        path = f"/api/vhosts/{quote(vhost, safe='')}/permissions"
        return [str(row["user"]) for row in self._request("GET", path) or []]

    def whoami(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._request("GET", "/api/whoami")
        return answer

    def is_administrator(self) -> bool:
        """Whether this account may make and remove others (the `administrator` tag); an
        account without any tag may not even ask."""
        try:
            tags = self.whoami().get("tags") or []
        except ManagementRefused:
            return False
        return "administrator" in (tags.split(",") if isinstance(tags, str) else tags)

    def add_guest(self, vhost: str, instance_id: str, password: str) -> None:
        user = guest_user(instance_id)
        self.ensure_user(user, password)
        self.set_permissions(vhost, user, guest_permissions(instance_id))

    def remove_guest(self, instance_id: str) -> None:
        self.delete_user(guest_user(instance_id))
