"""How every entry point starts: the settings built once (every bad one named, unknown
variables warned about), logging set up, and the settings dropped from the environment,
since child processes (ansible-runner records the whole environment in its artifacts)
must not see them; then the state directory and the store made ready, and the runtime
(bus and keys) loaded. Started as root, every entry point gives root up for the
service's own account before it opens the store (`trove_svc.security.service_account`)."""

from __future__ import annotations

import logging
import os
import sys

from trove_svc.domain import catalog
from trove_svc.operator import setup
from trove_svc.process.components import Runtime
from trove_svc.process.settings import ENV_PREFIX, Settings, SettingsError, unknown_variables
from trove_svc.security import service_account
from trove_svc.store.db import open_store
from trove_wire import logs

LOG = logging.getLogger("trove_svc")


def load_settings(part: str) -> Settings:
    """The settings of `part` (api, taskmanager, ...); exits naming each bad setting."""
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        sys.exit("trove-svc: bad settings:\n  " + "\n  ".join(exc.problems))
    warnings = unknown_variables()
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        del os.environ[key]
    logs.configure(part, settings.log_format)
    for warning in warnings:
        LOG.warning("%s", warning)
    return settings


def prepare(settings: Settings) -> None:
    """The state directory and the store, ready; the catalog knows the host's datastores.
    Started as root, the process is the service's unprivileged account from here on."""
    # Everything the service writes is its own unless a role says otherwise.
    os.umask(0o077)
    setup.prepare_state_dir(settings)
    if os.geteuid() == 0:
        service_account.become(settings)
    open_store(settings.effective_database_url)
    catalog.ensure_defaults(catalog.host_datastores())


def runtime(settings: Settings) -> Runtime:
    """The bus and keys of a set-up deployment; exits saying what is missing."""
    try:
        return Runtime.load(settings)
    except ValueError as exc:
        sys.exit(f"trove-svc: {exc}")
