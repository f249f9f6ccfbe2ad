"""gunicorn's entry point, for running the API under a gunicorn of your own:
``gunicorn 'trove_svc.api.wsgi:application()'`` (`trove-svc api` does the same with the
settings' bind and workers)."""

from __future__ import annotations

import os

import falcon

from trove_svc import metrics, startup
from trove_svc.api.app import create_app
from trove_svc.runtime import Runtime
from trove_svc.store.db import open_store


def application() -> falcon.App[falcon.Request, falcon.Response]:
    settings = startup.load_settings("api")
    os.umask(0o077)
    open_store(settings.effective_database_url)
    metrics.configure(settings.metrics_dir)
    try:
        runtime = Runtime.load(settings)
    except ValueError as exc:
        raise SystemExit(f"trove-svc: {exc}") from exc
    return create_app(settings, runtime.bus(), runtime.keys)
