"""What a running control-plane process is built from, loaded once by its entry point:
the service key, the deployment's broker account and URL, and the parts made from them."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from trove_svc.bus.broker import Account, BrokerAdmin, amqp_url, load_account, named_account
from trove_svc.bus.client import Bus
from trove_svc.process.settings import Settings
from trove_svc.security.keys import KeyRing, ServiceKeys
from trove_svc.taskmanager.deps import FlowDeps
from trove_svc.taskmanager.runner import PlaybookRunner


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    keys: ServiceKeys
    # The deployment's own account (made by setup), else the one the transport URL names.
    account: Account
    keyring: KeyRing

    @classmethod
    def load(cls, settings: Settings) -> Runtime:
        """ValueError, saying what is missing, unless `trove-svc setup` ran."""
        keys = ServiceKeys.load(settings.service_key_path)
        account = load_account(settings.credentials_path) or named_account(settings.transport_url)
        if account is None:
            raise ValueError(
                f"no broker account in {settings.credentials_path}; run `trove-svc setup`"
            )
        return cls(settings=settings, keys=keys, account=account, keyring=KeyRing(keys))

    @property
    def url(self) -> str:
        return amqp_url(self.settings, self.account)

    def bus(self) -> Bus:
        return Bus(self.url, self.keyring)

    def admin(self) -> BrokerAdmin:
        return BrokerAdmin(self.settings.management_url, self.account)

    def guest_url(self, user: str, password: str) -> str:
        """The URL a guest of this deployment connects with, under its own account, at the
        address guests on other hosts reach the broker at (if one is set)."""
        url = amqp_url(self.settings, Account(user, password), named_account_wins=False)
        if not self.settings.guest_broker_address:
            return url
        parts = urlsplit(url)
        credentials = parts.netloc.rsplit("@", 1)[0]
        return urlunsplit(
            parts._replace(netloc=f"{credentials}@{self.settings.guest_broker_address}")
        )

    def flow_deps(self) -> FlowDeps:
        return FlowDeps(
            settings=self.settings,
            runner=PlaybookRunner(self.settings),
            bus=self.bus(),
            keys=self.keys,
            admin=self.admin(),
            guest_url=self.guest_url,
        )
