"""JSON bodies, read with limits checked before parsing costs anything.

The body's size is checked by `BodySizeLimit` before it is read; here its nesting depth is
checked before it is parsed (a body of 100,000 brackets would exhaust the parser's stack),
what is not UTF-8 or not JSON is refused with a short 400 that quotes nothing of it, and
so is JSON holding a character or a number no field takes (`validation.unfit_value`).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import falcon
import falcon.media

from trove_svc.api import validation
from trove_svc.domain import errors

# A JSON string, escapes honoured; one left open runs to the end of the body.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_OPENING = (b"[", b"{")


def too_deep(body: bytes, max_depth: int) -> bool:
    """Whether `body` nests arrays and objects deeper than `max_depth` (strings skipped)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    brackets = _BRACKET.findall(_STRING.sub(b"", body))
    depths = itertools.accumulate(1 if bracket in _OPENING else -1 for bracket in brackets)
    return any(depth > max_depth for depth in depths)


class LimitedJSON(falcon.media.BaseHandler):
    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth

    def deserialize(
        self, stream: Any, content_type: str | None, content_length: int | None
    ) -> object:
        body = stream.read()
        if not body:
            # falcon answers `default_when_empty` (or its own 400) for an empty body.
            raise falcon.MediaNotFoundError("JSON")
        if too_deep(body, self._max_depth):
            raise errors.BadRequest(
                f"The body nests arrays or objects deeper than {self._max_depth} levels."
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.BadRequest("The body is not UTF-8.") from exc
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not JSON"
            raise errors.BadRequest(f"The body is not valid JSON ({reason}).") from exc
        unfit = validation.unfit_value(parsed)
        if unfit:
            raise errors.BadRequest(unfit)
        return parsed

    def serialize(self, media: object, content_type: str | None) -> bytes:
        return json.dumps(media, ensure_ascii=False).encode()
