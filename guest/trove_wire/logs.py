"""Logging for every process of trove-svc, the guest's included: plain text, or one JSON
object per line (`json`), each carrying the id of the request it serves.

The request id travels from the API through every message (`Context.request_id`) into the
task manager's and the guest's lines for that request: code serving a request runs
inside `serving(request_id)`. pika's own chatter shows from WARNING up only.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
import traceback
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TextIO

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")

PLAIN = "%(asctime)s %(process)d %(levelname)s %(name)s %(request_id)s%(message)s"


@contextlib.contextmanager
def serving(request_id: str) -> Iterator[None]:
    """Lines logged inside carry `request_id`."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def current_request_id() -> str:
    return _request_id.get()


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            found = _request_id.get()
            record.request_id = f"[{found}] " if found else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, process, request id, message."""

    def __init__(self, part: str) -> None:
        super().__init__()
        self._part = part

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "part": self._part,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        request_id = _request_id.get() or str(getattr(record, "request_id", "")).strip("[] ")
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(line, ensure_ascii=False)


def configure(part: str, log_format: str = "text", stream: TextIO | None = None) -> None:
    """Set up the root logger of a process (`part` names it in JSON lines)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_RequestIdFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(part))
    else:
        handler.setFormatter(logging.Formatter(PLAIN))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("pika.adapters.utils.io_services_utils").addFilter(_reset_without_stack)
    logging.captureWarnings(True)
    if log_format == "json":
        # Even a crash leaves one JSON line, not a bare traceback.
        sys.excepthook = _log_uncaught


def _reset_without_stack(record: logging.LogRecord) -> bool:
    """pika logs a connection the broker reset (an idle one it closed, a node that went
    away) with its stack, twice: as the record's exception and written into its message.
    One line naming the error is what an operator needs: the publisher or consumer opens
    another connection."""
    if record.exc_info and isinstance(record.exc_info[1], ConnectionError):
        record.msg = "connection to the broker lost: %r"
        record.args = (record.exc_info[1],)
        record.exc_info = None
        record.exc_text = None
    return True


def _log_uncaught(
    kind: type[BaseException], value: BaseException, trace: TracebackType | None
) -> None:
    logging.getLogger("uncaught").critical(
        "uncaught %s", kind.__name__, exc_info=(kind, value, trace)
    )
