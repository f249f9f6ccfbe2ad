"""`trove-svc setup`: what a deployment needs before it runs, made once and safe to repeat.

- As root, the service's own unprivileged account (`trove_svc.security.service_account`).
- The state directory, private to the service's account (instances' own accounts may only
  pass through to their own directories).
- The service key (0600).
- On RabbitMQ, through its management API and an administrator's credentials given once
  (by default the broker's stock `guest` account on loopback, used for nothing else): the
  deployment's vhost and its own account with a generated password, kept in a 0600 file;
  or, when the transport URL names an account (the operator's, on the URL's vhost or `/`),
  a check that it is an administrator, as the deployment makes guests' accounts with it.
- The deployment's queues and exchanges, and the policy that limits every guest's reports
  queue (`trove_svc.bus.broker.report_queue_policy`, from TROVE_SVC_REPORT_BACKLOG).
- A word on the broker's stock `guest` account: while guest/guest works, any process on
  the broker's machine (an instance's datastore on the local provider, under a tenant
  with root) can administer the broker. `--retire-stock-guest` removes it.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlsplit

from trove_svc.bus.broker import (
    GUEST_USER_PREFIX,
    REPORT_QUEUE_POLICY,
    Account,
    BrokerAdmin,
    amqp_url,
    load_account,
    named_account,
    report_queue_policy,
    save_account,
)
from trove_svc.domain import errors
from trove_svc.process.settings import DEFAULT_VHOST, Settings
from trove_svc.security import keys, service_account
from trove_wire import topology
from trove_wire.amqp import BrokerUnavailable, Publisher

LOG = logging.getLogger(__name__)
DEFAULT_ADMIN = Account("guest", "guest")


def prepare_state_dir(settings: Settings) -> None:
    """Private to the service's account; where instances have accounts of their own, they
    may pass through (not list) to reach their own directories, which are theirs alone.
    As root: the service's account made first, and the state directory handed to it."""
    account = service_account.ensure(settings) if os.geteuid() == 0 else None
    passable = 0o711 if settings.instance_accounts else 0o700
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    settings.state_dir.chmod(passable)
    settings.instances_dir.mkdir(exist_ok=True)
    settings.instances_dir.chmod(passable)
    settings.backups_dir.mkdir(parents=True, exist_ok=True)
    settings.backups_dir.chmod(passable)
    for private in (settings.runs_dir, settings.secrets_dir, settings.log_dir):
        private.mkdir(exist_ok=True)
        private.chmod(0o700)
    if account is not None:
        service_account.hand_over(settings, account)


def _admin_account(admin_url: str | None) -> tuple[str | None, Account]:
    if not admin_url:
        return None, DEFAULT_ADMIN
    parts = urlsplit(admin_url)
    if parts.username is None:
        raise errors.BadRequest("The broker admin URL must carry a user and password.")
    base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
    return base, Account(unquote(parts.username), unquote(parts.password or ""))


def _account_works(settings: Settings, account: Account) -> bool:
    try:
        BrokerAdmin(settings.management_url, account).whoami()
    except errors.ServiceUnavailable:
        return False
    return True


def ensure_broker_account(settings: Settings, admin_url: str | None = None) -> Account:
    """The deployment's own account on its vhost, made with the admin's help if missing;
    or the account the transport URL names (the operator made it, and its vhost), once it
    is known to be an administrator."""
    named = named_account(settings.transport_url)
    if named is not None:
        require_administrator(settings, named)
        return named
    account = load_account(settings.credentials_path)
    if account is not None and _account_works(settings, account):
        return account
    management, admin_account = _admin_account(admin_url)
    admin = BrokerAdmin(management or settings.management_url, admin_account)
    vhost = settings.vhost
    user = f"trove-svc-{vhost.removeprefix('trove-svc-')}"[:64]
    account = Account(user, secrets.token_urlsafe(24))
    admin.ensure_vhost(vhost)
    # Administrator: it makes and removes the per-instance accounts.
    admin.ensure_user(account.user, account.password, tags="administrator")
    admin.set_permissions(vhost, account.user, {"configure": ".*", "write": ".*", "read": ".*"})
    save_account(settings.credentials_path, account)
    LOG.info("made broker account %s on vhost %s", account.user, vhost)
    return account


def require_administrator(settings: Settings, account: Account) -> None:
    """The deployment makes and removes a broker account per instance with its own: the
    account must be a RabbitMQ administrator."""
    if not BrokerAdmin(settings.management_url, account).is_administrator():
        raise errors.BadRequest(
            f"The transport URL's broker account {account.user!r} is not a RabbitMQ "
            "administrator, and trove-svc makes an account per instance with it. Tag it "
            f"(`rabbitmqctl set_user_tags {account.user} administrator`), or leave the "
            "account out of TROVE_SVC_TRANSPORT_URL and let `trove-svc setup "
            "--broker-admin-url http://USER:PASSWORD@HOST:15672` make the deployment's own."
        )


def check_stock_guest(settings: Settings, account: Account, retire: bool) -> None:
    """Remove the broker's stock `guest` account when asked, else warn while guest/guest
    still logs in. Uses the deployment's own (administrator) account, so it works after
    the stock one was the admin that made it."""
    admin = BrokerAdmin(settings.management_url, account)
    if DEFAULT_ADMIN.user not in admin.users():
        return
    if retire:
        admin.delete_user(DEFAULT_ADMIN.user)
        LOG.warning("removed the broker's stock account %r", DEFAULT_ADMIN.user)
        return
    if _account_works(settings, DEFAULT_ADMIN):
        LOG.warning(
            "RabbitMQ's stock account guest/guest still logs in at %s: any process on the "
            "broker's machine, an instance's datastore included, can administer the broker "
            "with it. Run `trove-svc setup --retire-stock-guest` once nothing else uses it.",
            settings.management_url,
        )


def declare_topology(settings: Settings, account: Account) -> None:
    publisher = Publisher(amqp_url(settings, account))
    try:
        publisher.declare(topology.declare_control_plane)
    except BrokerUnavailable as exc:
        raise errors.ServiceUnavailable(f"RabbitMQ is not reachable: {exc}") from exc
    finally:
        publisher.close()


def limit_report_queues(settings: Settings, account: Account) -> None:
    """The policy on every guest's reports queue, set again on each run (the backlog is a
    setting)."""
    policy = report_queue_policy(settings.report_backlog)
    BrokerAdmin(settings.management_url, account).set_policy(
        settings.vhost, REPORT_QUEUE_POLICY, policy
    )


def run(
    settings: Settings, admin_url: str | None = None, retire_stock_guest: bool = False
) -> Account:
    prepare_state_dir(settings)
    if keys.create_service_key(settings.service_key_path):
        LOG.info("made the service key %s", settings.service_key_path)
    account = ensure_broker_account(settings, admin_url)
    declare_topology(settings, account)
    limit_report_queues(settings, account)
    check_stock_guest(settings, account, retire_stock_guest)
    return account


def remove_broker_objects(settings: Settings, admin_url: str | None = None) -> None:
    """Remove the deployment's vhost, its account and its instances' guest accounts (for
    tests and uninstalling). Only accounts with permissions on this vhost are touched: a
    deployment beside it on the same broker keeps its own. The broker's default vhost, where
    an account the transport URL names lives without a vhost of its own, stays."""
    management, admin_account = _admin_account(admin_url)
    admin = BrokerAdmin(management or settings.management_url, admin_account)
    account = load_account(settings.credentials_path)
    for user in admin.users_of(settings.vhost):
        if user.startswith(GUEST_USER_PREFIX):
            admin.delete_user(user)
    if settings.vhost != DEFAULT_VHOST:
        admin.delete_vhost(settings.vhost)
    if account is not None:
        admin.delete_user(account.user)


def credentials_exist(settings: Settings) -> bool:
    return Path(settings.credentials_path).exists()
