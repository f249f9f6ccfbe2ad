"""A second (third, ...) control-plane node joins an existing deployment: what the nodes
share is written once, on a node of the deployment, to a join file (0600), and given once
to `trove-svc setup --join FILE` on the new node, which keeps it in its own state
directory. Shared: the service key, the deployment's broker account and vhost, the store's
URL and the broker's addresses. Not shared: each node's state directory (runs, secrets of
runs in progress, logs, metrics), which is the node's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trove_svc.bus.broker import Account, load_account, named_account, save_account
from trove_svc.domain import errors
from trove_svc.process.settings import JOINED_FILE, JOINED_SETTINGS, Settings
from trove_svc.security import private_files


def shared(settings: Settings) -> dict[str, Any]:
    """What a new node needs of this (set-up) node's deployment; BadRequest if the store
    is this node's own SQLite file, which no other node can reach."""
    if not settings.database_url or settings.database_url.startswith("sqlite"):
        raise errors.BadRequest(
            "Nodes share the store: set TROVE_SVC_DATABASE_URL to a PostgreSQL or MySQL "
            "URL on every node; this one keeps its store in a SQLite file of its own."
        )
    account = load_account(settings.credentials_path) or named_account(settings.transport_url)
    if account is None:
        raise errors.BadRequest(f"No broker account in {settings.credentials_path}: run setup.")
    try:
        service_key = settings.service_key_path.read_text().strip()
    except OSError as exc:
        raise errors.BadRequest(f"Cannot read the service key: {exc.strerror}") from exc
    return {
        "service_key": service_key,
        "broker_account": {"user": account.user, "password": account.password},
        "database_url": settings.database_url,
        "broker_vhost": settings.vhost,
        "transport_url": settings.transport_url,
        "rabbit_management_url": settings.rabbit_management_url,
    }


def export(settings: Settings, path: Path) -> None:
    """The join file for a new node (0600: it holds the service key and the broker's and
    the store's passwords)."""
    private_files.write(path, json.dumps(shared(settings), indent=2) + "\n")


def adopt(settings: Settings, path: Path) -> None:
    """Keep what the join file says in this node's state directory: the service key, the
    broker account, and the shared settings (read beneath this node's own environment).
    A node already set up with another service key is refused rather than overwritten."""
    try:
        given = json.loads(path.read_text())
        service_key = str(given["service_key"])
        account = Account(
            str(given["broker_account"]["user"]), str(given["broker_account"]["password"])
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.BadRequest(f"{path} is not a join file: {exc}") from exc
    key_path = settings.service_key_path
    if key_path.exists() and key_path.read_text().strip() != service_key:
        raise errors.BadRequest(
            f"{key_path} holds another service key: this node belongs to another deployment."
        )
    private_files.write(key_path, service_key + "\n")
    save_account(settings.credentials_path, account)
    kept = {name: given.get(name) or "" for name in JOINED_SETTINGS}
    private_files.write(settings.state_dir / JOINED_FILE, json.dumps(kept, indent=2) + "\n")
