"""Request body validation against a JSON schema, before the responder runs.

Like falcon's own jsonschema validator, but the message names the field at fault
("instance.volume.size: 0 is less than the minimum of 1"), as a user needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import falcon
import jsonschema

from trove_svc import errors


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "body"


def validate(schema: dict[str, Any]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )

    def decorator(responder: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(responder)
        def wrapper(
            self: Any, req: falcon.Request, resp: falcon.Response, *args: Any, **kwargs: Any
        ) -> None:
            body = req.get_media(default_when_empty=None)
            error = jsonschema.exceptions.best_match(validator.iter_errors(body))
            if error is not None:
                raise errors.BadRequest(f"{_where(error)}: {error.message}")
            responder(self, req, resp, *args, **kwargs)

        wrapper.request_schema = schema  # type: ignore[attr-defined]  # for the OpenAPI doc
        return wrapper

    return decorator
