"""Request body validation against a JSON schema, before the responder runs.

Like falcon's own jsonschema validator, but the message names the field at fault and the
rule it breaks ("instance.volume.size: must be at least 1"), never the value sent (it may be
a password, or 10,000 characters), and stays short.

Before any schema, every string of every body (values and property names, at any depth)
is held to one rule, and every number to another (`unfit_value`, which the JSON media
handler applies to each body it parses): so a field added tomorrow is covered without a
word in its schema.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import falcon
import jsonschema

from trove_svc.domain import errors

_PART = 32
_TYPES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _short(text: object) -> str:
    shown = str(text)
    return shown if len(shown) <= _PART else shown[:_PART] + "..."


def _place(path: Sequence[object]) -> str:
    return ".".join(_short(part) for part in path) or "body"


def _where(error: jsonschema.ValidationError) -> str:
    return _place(error.absolute_path)


# No field has a use for these, and each changes what a file, a command line or a template
# means once a string reaches it: control characters (a newline starts a new line of a
# configuration file), the line breaks YAML and JavaScript also honour, and halves of
# surrogate pairs (no UTF-8 file can hold one).
_UNFIT_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_UNFIT_WORDS = {
    "Cc": "control characters",
    "Zl": "line separators",
    "Zp": "paragraph separators",
    "Cs": "unpaired surrogates",
}


def _unfit_text(text: str) -> str | None:
    found = _UNFIT_CHARACTER.search(text)
    return _UNFIT_WORDS[unicodedata.category(found.group())] if found else None


def unfit_value(body: object) -> str | None:
    """Where `body` holds a string (a value or a property name) with a character no field
    takes, or a number that is not finite (NaN, or 1e999 overflowing to infinity), and the
    rule it breaks, as a message ("instance.name: must not hold control characters."); None
    if it holds neither. The message never quotes the value."""
    pending: list[tuple[object, tuple[object, ...]]] = [(body, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, str):
            words = _unfit_text(value)
            if words:
                return f"{_place(path)}: must not hold {words}."
        elif isinstance(value, float) and not math.isfinite(value):
            return f"{_place(path)}: must be a finite number."
        elif isinstance(value, dict):
            for key in value:
                words = _unfit_text(key)
                if words:
                    return f"{_place(path)}: property names must not hold {words}."
            # Reversed onto the stack: the body's first offence is the one named.
            pending.extend((value[key], (*path, key)) for key in reversed(value))
        elif isinstance(value, list):
            pending.extend((value[i], (*path, i)) for i in reversed(range(len(value))))
    return None


def _kinds(schema: Any) -> str:
    kinds = schema if isinstance(schema, list) else [schema]
    return " or ".join(_TYPES.get(str(kind), str(kind)) for kind in kinds)


def _alternatives(schemas: list[Any]) -> str:
    return " or ".join(_kinds(s.get("type", "something")) for s in schemas if isinstance(s, dict))


# Rules whose words quote the rule's value from the schema as it is (a bound, a format).
_BOUND_WORDS = {
    "minLength": "must be at least {} characters",
    "maxLength": "must be at most {} characters",
    "minimum": "must be at least {}",
    "maximum": "must be at most {}",
    "minItems": "must hold at least {} items",
    "maxItems": "must hold at most {} items",
    "minProperties": "must hold at least {} properties",
    "maxProperties": "must hold at most {} properties",
    "format": "must be a valid {}",
}


def _missing_words(error: jsonschema.ValidationError) -> str:
    required: Any = error.validator_value
    present: Any = error.instance or {}
    missing = [name for name in required if name not in present]
    return f"{missing[0] if missing else required[0]!r} is required"


def _unknown_words(error: jsonschema.ValidationError) -> str:
    schema: Any = error.schema
    present: Any = error.instance or {}
    known = set(schema.get("properties", {}) if isinstance(schema, dict) else {})
    extra = sorted(str(k) for k in present if k not in known)
    shown = ", ".join(repr(_short(name)) for name in extra[:3])
    return f"has unknown properties: {shown}" + (", ..." if len(extra) > 3 else "")


def _choice_words(error: jsonschema.ValidationError) -> str:
    choices: Any = error.validator_value
    return "must be one of " + ", ".join(repr(v) for v in list(choices)[:10])


def _type_words(error: jsonschema.ValidationError) -> str:
    return f"must be {_kinds(error.validator_value)}"


def _alternative_words(error: jsonschema.ValidationError) -> str:
    schemas: Any = error.validator_value
    return f"must be {_alternatives(schemas)}"


def _pattern_words(error: jsonschema.ValidationError) -> str:
    return f"must match {_short(error.validator_value)}"


# Rules whose words need more: the names the body holds, the schema around the rule, or
# the rule's value put in words.
_RULE_WORDS: dict[str, Callable[[jsonschema.ValidationError], str]] = {
    "required": _missing_words,
    "additionalProperties": _unknown_words,
    "enum": _choice_words,
    "type": _type_words,
    "oneOf": _alternative_words,
    "anyOf": _alternative_words,
    "pattern": _pattern_words,
}


def rule(error: jsonschema.ValidationError) -> str:
    """The rule `error` breaks, in words, quoting only the schema (never the value)."""
    validator = str(error.validator)
    if validator in _BOUND_WORDS:
        return _BOUND_WORDS[validator].format(error.validator_value)
    if validator in _RULE_WORDS:
        return _RULE_WORDS[validator](error)
    return f"breaks the schema's {error.validator!r} rule"


def _relevance(error: jsonschema.ValidationError) -> tuple[Any, ...]:
    """jsonschema's order (the deepest place in the body first, weak rules last), but at
    one place the rule nearest the schema's surface first: a field every request needs
    before one that a condition adds."""
    ranked: tuple[Any, ...] = jsonschema.exceptions.relevance(error)  # type: ignore[assignment]
    return (*ranked[:3], -len(error.relative_schema_path), *ranked[3:])


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
            error = jsonschema.exceptions.best_match(validator.iter_errors(body), key=_relevance)
            if error is not None:
                raise errors.BadRequest(f"{_where(error)}: {rule(error)}.")
            responder(self, req, resp, *args, **kwargs)

        wrapper.request_schema = schema  # type: ignore[attr-defined]  # for the OpenAPI doc
        return wrapper

    return decorator
