"""gunicorn's own lines (its errors and the access log) through the process's logging, so
that they take its format (one JSON object per line, if so set) and the request's id."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.glogging import Logger

from trove_wire import logs

REQUEST_ID_HEADER = "x-openstack-request-id"


class GunicornLogs(Logger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
            logger.setLevel(logging.INFO)

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        request_id = ""
        for name, value in getattr(resp, "headers", []):
            if str(name).lower() == REQUEST_ID_HEADER:
                request_id = str(value)
        with logs.serving(request_id):
            super().access(resp, req, environ, request_time)
