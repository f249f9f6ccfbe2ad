"""The one JSON envelope every message travels in, and the reply to a call."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

ENVELOPE_VERSION = 1


class MalformedMessage(ValueError):
    """A message body that is not a valid envelope; it is dropped, never retried."""


@dataclass(frozen=True)
class Context:
    """Who asked: carried with every message so logs and records can say so."""

    project: str = ""
    user: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class Envelope:
    method: str
    args: dict[str, Any]
    context: Context = field(default_factory=Context)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent_at: float = 0.0
    version: int = ENVELOPE_VERSION

    @classmethod
    def new(
        cls,
        method: str,
        args: dict[str, Any],
        context: Context | None = None,
        clock: Callable[[], float] = time.time,
    ) -> Envelope:
        return cls(method=method, args=args, context=context or Context(), sent_at=clock())

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Envelope:
        try:
            raw = json.loads(body)
            if raw.get("version") != ENVELOPE_VERSION:
                raise MalformedMessage(f"unsupported envelope version {raw.get('version')!r}")
            return cls(
                method=str(raw["method"]),
                args=dict(raw["args"]),
                context=Context(**raw.get("context", {})),
                id=str(raw["id"]),
                sent_at=float(raw["sent_at"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MalformedMessage(f"not a trove-svc envelope: {exc}") from exc


@dataclass(frozen=True)
class Reply:
    """The answer to a call: a result, or an error code (`trove_wire.contract.ErrorCode`)."""

    result: Any = None
    error_code: str | None = None
    error_message: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Reply:
        try:
            raw = json.loads(body)
            return cls(
                result=raw.get("result"),
                error_code=raw.get("error_code"),
                error_message=raw.get("error_message"),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise MalformedMessage(f"not a trove-svc reply: {exc}") from exc
