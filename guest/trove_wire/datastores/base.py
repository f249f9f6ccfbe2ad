"""What a datastore spec holds: the shapes every datastore fills in."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class NameRule:
    """The names a datastore accepts for databases or users, and those it keeps for itself."""

    pattern: re.Pattern[str]
    description: str
    reserved: frozenset[str] = frozenset()
    reserved_prefixes: tuple[str, ...] = ()

    def problem(self, kind: str, name: object) -> str | None:
        """Why `name` is refused (a sentence naming the rule), or None if it is fine."""
        if not isinstance(name, str) or not self.pattern.fullmatch(name):
            shown = name[:64] + "..." if isinstance(name, str) and len(name) > 64 else name
            return f"{kind} name {shown!r} is not valid: {self.description}."
        lowered = name.lower()
        if lowered in self.reserved or lowered.startswith(self.reserved_prefixes):
            return f"{kind} name {name!r} is reserved by the datastore."
        return None


def identifier_rule(
    first: str,
    rest: str,
    longest: int,
    what: tuple[str, str],
    reserved: frozenset[str],
    prefixes: tuple[str, ...] = (),
) -> NameRule:
    """A rule for identifiers: a first character from `first`, then up to `longest` - 1
    from `rest`; `what` says both in words."""
    return NameRule(
        re.compile(f"[{first}][{rest}]{{0,{longest - 1}}}"),
        f"it must start with {what[0]}, hold only {what[1]}, and be at most {longest} characters",
        reserved,
        prefixes,
    )


@dataclass(frozen=True)
class PasswordRule:
    """What a datastore takes for a password; the deployment sets the minimum length."""

    max_length: int = 128
    # Characters the datastore (or its tools) cannot take in a password.
    forbidden: str = ""

    def problem(self, password: object, min_length: int) -> str | None:
        """Why `password` is refused (the rule, never the password), or None."""
        if not isinstance(password, str):
            return "it must be a string"
        if len(password) < min_length:
            return f"it must be at least {min_length} characters long"
        if len(password) > self.max_length:
            return f"it must be at most {self.max_length} characters long"
        if any(ord(c) < 32 or ord(c) == 127 for c in password):
            return "it must not hold control characters"
        bad = sorted({c for c in password if c in self.forbidden})
        if bad:
            return f"it must not hold {', '.join(repr(c) for c in bad)}"
        return None


@dataclass(frozen=True)
class Parameter:
    """A configuration parameter: its type, bounds, and whether changing it needs a restart."""

    name: str
    type: str  # integer, float, string, boolean
    restart_required: bool
    min: int | float | None = None
    max: int | float | None = None

    def view(self, datastore_version_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "restart_required": self.restart_required,
            "datastore_version_id": datastore_version_id,
        }
        if self.min is not None:
            body["min"] = self.min
        if self.max is not None:
            body["max"] = self.max
        return body


@dataclass(frozen=True)
class Capabilities:
    databases: bool
    users: bool
    root: bool
    backups: bool = False
    replicas: bool = False


@dataclass(frozen=True)
class Discovered:
    """A version of the datastore the host has, and where its binaries are."""

    version: str
    bin_dir: str


@dataclass(frozen=True)
class DatastoreSpec:
    """Everything trove-svc decides per datastore. Adding one: a spec, a role, a driver."""

    name: str
    default_port: int
    capabilities: Capabilities
    user_rule: NameRule
    # None: the datastore has no databases (Redis).
    database_rule: NameRule | None
    # Databases and users of the datastore itself, never shown to users.
    system_databases: frozenset[str]
    hidden_users: frozenset[str]
    parameters: tuple[Parameter, ...]
    # The server's own log, relative to the role's base directory.
    log_file: str
    # The guest's driver, as "module:Class".
    driver: str
    # The binaries and version the host has (None: not installed).
    discover: Callable[[], Discovered | None]
    # The role's own variables naming the binaries to run (the rest of the role contract
    # is shared: <name>_port, <name>_base_dir, ...).
    binary_vars: Callable[[Discovered], dict[str, Any]] = field(default=lambda _found: {})
    password_rule: PasswordRule = PasswordRule()


def version_of(binary: str, pattern: str) -> str | None:
    """The version a binary prints with --version, as `pattern`'s first group."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(pattern, out.stdout)
    return match.group(1) if match else None
