"""gunicorn's entry point: ``gunicorn 'trove_svc.api.wsgi:application()'``."""

from __future__ import annotations

import falcon

from trove_svc.api.app import create_app
from trove_svc.runtime import Runtime
from trove_svc.settings import Settings
from trove_svc.store.db import open_store


def application() -> falcon.App[falcon.Request, falcon.Response]:
    settings = Settings.from_env()
    open_store(settings.effective_database_url)
    runtime = Runtime.load(settings)
    return create_app(settings, runtime.bus(), runtime.keys)
