"""The password policy: the deployment's minimum length (a setting, 12 by default) and what
each datastore cannot take (the registry's `PasswordRule`), checked at the API."""

from __future__ import annotations

from trove_svc.domain.errors import BadRequest
from trove_wire import datastores


def check(datastore: str, password: object, min_length: int, whose: str) -> None:
    problem = datastores.get(datastore).password_rule.problem(password, min_length)
    if problem:
        raise BadRequest(f"The password of {whose[:64]} is refused: {problem}.")
