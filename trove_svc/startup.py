"""How every entry point starts: the settings built once (every bad one named, unknown
variables warned about), logging set up, and the settings dropped from the environment,
since child processes (ansible-runner records the whole environment in its artifacts)
must not see them."""

from __future__ import annotations

import logging
import os
import sys

from trove_svc.settings import ENV_PREFIX, Settings, SettingsError, unknown_variables
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
