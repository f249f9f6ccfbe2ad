"""gunicorn's entry point, for running the API under a gunicorn of your own:
``gunicorn 'trove_svc.api.wsgi:application()'`` (`trove-svc api` does the same with the
settings' bind and workers)."""

from __future__ import annotations

import falcon

from trove_svc.api.app import create_app
from trove_svc.process import metrics, startup


def application() -> falcon.App[falcon.Request, falcon.Response]:
    settings = startup.load_settings("api")
    startup.prepare(settings)
    metrics.configure(settings.metrics_dir)
    runtime = startup.runtime(settings)
    return create_app(settings, runtime.bus(), runtime.keys)
