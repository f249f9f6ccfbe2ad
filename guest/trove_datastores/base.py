"""What a datastore spec holds: the shapes every datastore fills in."""

from __future__ import annotations

import math
import re
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

# Accounts (and slots) replicas stream through, one per replica, named after it; users may
# not take such names.
REPLICATION_PREFIX = "os_repl_"


def replication_account(replica_id: str) -> str:
    """The source's account for one replica (also its slot's name, where there are slots)."""
    return REPLICATION_PREFIX + replica_id.replace("-", "")[:16].lower()


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
        if lowered in self.reserved or lowered.startswith(
            (*self.reserved_prefixes, REPLICATION_PREFIX)
        ):
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


# String values go into the engine's configuration file: no quotes, comments or newlines.
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.,:/+*() -]{0,256}")
# A fractional number given as a string is written as given: only in a form every
# engine's configuration reads ("1_000", " 2", "0x1p3" and "inf" are Python's forms).
_FRACTIONAL = re.compile(
    r"[+-]?(?:[0-9]{1,20}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})(?:[eE][+-]?[0-9]{1,3})?"
)
BOOLEAN_WORDS = {
    "true": True,
    "on": True,
    "yes": True,
    "1": True,
    "false": False,
    "off": False,
    "no": False,
    "0": False,
}


@dataclass(frozen=True)
class Parameter:
    """A configuration parameter as the engine itself describes it: type, bounds, choices,
    unit, and whether a change needs a restart (trove_svc.domain.parameter_rules reads these from
    a throwaway server of the version)."""

    name: str
    type: str  # integer, float, boolean, string, enum, set (a list of choices)
    restart_required: bool
    min: int | float | None = None
    max: int | float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    default: str = ""
    # A string the engine takes only in a form of its own: a regular expression the whole
    # value must match (case aside), and `hint`, that form in words ("a time zone ...").
    # `hint` also stands for a long list of choices (the engine's time zones).
    pattern: str = ""
    hint: str = ""

    def problem(self, value: object) -> str | None:
        """Why the engine would refuse `value` (the rule, in words), or None."""
        if self.type == "boolean":
            return self._boolean_problem(value)
        if self.type in ("integer", "float"):
            return self._number_problem(value)
        if isinstance(value, (dict, list)) or value is None:
            return "it must be a string"
        if self.type in ("enum", "set"):
            return self._choice_problem(str(value))
        return self._text_problem(str(value))

    def _boolean_problem(self, value: object) -> str | None:
        if isinstance(value, bool) or str(value).lower() in BOOLEAN_WORDS:
            return None
        return "it must be a boolean (true or false)"

    def _choice_problem(self, text: str) -> str | None:
        allowed = {c.lower() for c in self.choices}
        if self.type == "enum":
            chosen = [text]
            rule = f"it must be one of {', '.join(self.choices)}"
        else:
            # Each member exactly as the engine lists it (case aside): the engine refuses
            # one with a space around it, and skips an empty one.
            chosen = [member for member in text.split(",") if member]
            rule = f"it must be a comma-separated list of {', '.join(self.choices)}"
        return None if all(member.lower() in allowed for member in chosen) else rule

    def _text_problem(self, text: str) -> str | None:
        if self.choices and text.lower() not in {c.lower() for c in self.choices}:
            return f"it must be {self.hint or 'one of ' + ', '.join(self.choices)}"
        if self.pattern and not re.fullmatch(self.pattern, text, re.IGNORECASE):
            return f"it must be {self.hint}"
        if not _PLAIN_TEXT.fullmatch(text):
            return (
                "it must be at most 256 characters: letters, digits, spaces and _ . , : / + * ( ) -"
            )
        return None

    def _number_problem(self, value: object) -> str | None:
        number = self._as_number(value)
        if number is None:
            return f"it must be {'an integer' if self.type == 'integer' else 'a number'}"
        # Infinity (1e999 overflows to it) passes an open bound, and NaN would be refused
        # only as "out of range": neither is a setting (and neither is an integer).
        if not math.isfinite(number):
            return "it must be a finite number"
        low = self.min if self.min is not None else float("-inf")
        high = self.max if self.max is not None else float("inf")
        if not low <= number <= high:
            unit = f" ({self.unit})" if self.unit else ""
            return f"it must be between {self.min} and {self.max}{unit}"
        return None

    def _as_number(self, value: object) -> int | float | None:
        """`value` as a number of the parameter's type, or None if it is not one."""
        integer = self.type == "integer"
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None
        if integer and isinstance(value, float) and not value.is_integer():
            return None
        if not integer and isinstance(value, str) and not _FRACTIONAL.fullmatch(value):
            return None
        try:
            return int(value) if integer else float(value)
        except (ValueError, OverflowError):  # int() of an infinity overflows
            return None

    def engine_value(self, value: object, truth: tuple[str, str] = ("on", "off")) -> str:
        """The value as the engine's own configuration file spells it (`truth`: how it
        spells true and false)."""
        if self.type == "boolean":
            yes = value if isinstance(value, bool) else BOOLEAN_WORDS[str(value).lower()]
            return truth[0] if yes else truth[1]
        if self.type == "integer":
            return str(int(value))  # type: ignore[call-overload]
        return str(value)

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
        if self.hint:
            body["form"] = self.hint  # in words: a long list (time zones) or a grammar
        elif self.choices:
            body["choices"] = list(self.choices)
        if self.unit:
            body["unit"] = self.unit
        return body

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "restart_required": self.restart_required,
            "min": self.min,
            "max": self.max,
            "choices": list(self.choices),
            "unit": self.unit,
            "default": self.default,
            "pattern": self.pattern,
            "hint": self.hint,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Parameter:
        return cls(**{**record, "choices": tuple(record.get("choices", ()))})


class BackupLayout(StrEnum):
    """How a datastore's backup tool keeps a backup."""

    # One compressed file per backup (with the binary logs beside it, if any).
    FILE = "file"
    # A set in the tool's repository (pgBackRest): the repository is copied and removed
    # as a whole, and the tool keeps its newest full backup while anything needs it.
    REPOSITORY = "repository"


# The control plane's ids (of instances, backups): each names a file or directory of its
# own, so nothing else may pass for one.
_PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def plain_id(value: str) -> str:
    """`value`, if it is an id that can name a file of its own; ValueError otherwise."""
    if not isinstance(value, str) or not _PLAIN_ID.fullmatch(value):
        raise ValueError("not an id: letters, digits, - and _ only, at most 64")
    return value


@dataclass(frozen=True)
class BackupNaming:
    """What a datastore's backups are called in their instance's repository: the one
    account of it that the guest (which writes them) and the control plane (which finds,
    checks, copies and removes them) share. Every name comes from the backup's id, or
    from a label of the tool's own grammar; a guest's report names no path."""

    # A backup of its own file is "<backup id><file_suffix>" (BackupLayout.FILE).
    file_suffix: str = ""
    # A set in the tool's repository is "<sets_dir>/<label>" (BackupLayout.REPOSITORY).
    sets_dir: str = ""
    # The labels the tool gives its backups; None: a backup's label is its id.
    label_pattern: re.Pattern[str] | None = None
    # What a report's details may hold: the keys a restore reads, and each value's shape.
    details: Mapping[str, re.Pattern[str]] = field(default_factory=dict)

    def file_name(self, backup_id: str) -> str:
        """The file a backup is made into, named from its id alone."""
        if not self.file_suffix:
            raise ValueError("this datastore keeps its backups as sets in a repository")
        return plain_id(backup_id) + self.file_suffix

    def set_path(self, label: str) -> PurePosixPath:
        """A set's directory, relative to the repository; ValueError for a label that is
        not the tool's."""
        if not self.sets_dir:
            raise ValueError("this datastore keeps each backup in a file of its own")
        if self.label_pattern is None or not self.label_pattern.fullmatch(str(label)):
            raise ValueError("the backup's label is not one its tool gives")
        return PurePosixPath(self.sets_dir, label)

    def label_problem(self, label: object, backup_id: str) -> str | None:
        """Why `label` is not one the tool gives backup `backup_id`, or None."""
        if self.label_pattern is None:
            return None if label == backup_id else "the label must be the backup's id"
        if not isinstance(label, str) or not self.label_pattern.fullmatch(label):
            return f"the label is not of the tool's grammar ({self.label_pattern.pattern})"
        return None

    def details_problem(self, details: object) -> str | None:
        """Why a report's details are refused (a value the restore reads is not of its
        shape), or None. Keys the restore does not read are ignored."""
        if details is None:
            return None
        if not isinstance(details, dict):
            return "details must be an object"
        for key, shape in self.details.items():
            value = details.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, str | int):
                return f"details.{key} must be a string or an integer"
            if not shape.fullmatch(str(value)):
                return f"details.{key} is not of its shape ({shape.pattern})"
        return None

    def restore_details(self, details: Mapping[str, Any]) -> dict[str, str]:
        """Of `details`, what a restore reads: the keys it knows, with values of their
        shape (as text)."""
        kept = {}
        for key, shape in self.details.items():
            value = details.get(key)
            if value is not None and not isinstance(value, bool) and shape.fullmatch(str(value)):
                kept[key] = str(value)
        return kept


@dataclass(frozen=True)
class Capabilities:
    databases: bool
    users: bool
    root: bool
    backups: bool = False
    incremental_backups: bool = False
    # Changes since the newest full backup (not the newest backup).
    differential_backups: bool = False
    # Restores to a time (continuous log archiving).
    point_in_time: bool = False
    backup_layout: BackupLayout = field(default_factory=lambda: BackupLayout.FILE)
    replicas: bool = False
    # A source that fails is failed over to its most advanced replica by itself.
    failover: bool = False


@dataclass(frozen=True)
class Discovered:
    """A version of the datastore the host has, and where its binaries are."""

    version: str
    bin_dir: str


@dataclass(frozen=True)
class DatastoreSpec:
    """Everything trove-svc decides per datastore (docs/adding-a-datastore.md adds one)."""

    name: str
    default_port: int
    capabilities: Capabilities
    user_rule: NameRule
    # None: the datastore has no databases (Redis).
    database_rule: NameRule | None
    # Databases and users of the datastore itself, never shown to users.
    system_databases: frozenset[str]
    hidden_users: frozenset[str]
    # The parameters a configuration group may set (tuning only: never a path, a command,
    # a port, or what replication and the guest rely on) ...
    tunables: frozenset[str]
    # ... and how the engine itself describes them, asked of a throwaway server of the
    # version (trove_datastores.throwaway).
    describe_parameters: Callable[[Discovered], list[Parameter]]
    # The server's own log, relative to the role's base directory.
    log_file: str
    # The longest name of a Unix socket its server makes in the role's base directory: the
    # control plane keeps that path within what a socket's path may hold (107 bytes).
    socket_name: str
    # The guest's driver, as "module:Class" ("trove_datastores.<name>.driver:...").
    driver: str
    # The guest's backup engine (its tool's way to back up), as "module:Class"
    # ("trove_datastores.<name>.backup:...").
    backup_engine: str
    # The binaries and version the host has (None: not installed).
    discover: Callable[[], Discovered | None]
    # The Debian packages scripts/bootstrap.sh installs for it (it reads them from here):
    # its server, and the tools its role and backup engine run.
    os_packages: tuple[str, ...]
    # The Python distribution its guest driver talks through (a dependency of both
    # pyproject.toml files: the control plane's and the guest's).
    python_driver: str
    # The role's own variables naming the binaries to run, without the role's prefix
    # (`role_vars` adds it; the rest of the role contract is shared: port, base_dir, ...).
    binary_vars: Callable[[Discovered], dict[str, Any]] = field(default=lambda _found: {})
    password_rule: PasswordRule = PasswordRule()
    # The options a new database may be made with (`character_set`, `collate`), each
    # mapped to the rule `describe_parameters` gives for it (a tunable's, or one described
    # for this alone), so a database takes only what its engine lists. An option left out
    # is refused (400).
    database_options: Mapping[str, str] = field(default_factory=dict)
    # The guest logs in over the unix socket in the role's base directory, by the OS
    # account it runs as (peer), not over TCP with a password: a replica's data, with its
    # admin's password, is its source's.
    admin_over_socket: bool = False
    # How the engine's configuration spells true and false.
    boolean_words: tuple[str, str] = ("on", "off")
    # A reload re-reads the whole file, so a value taken out of it goes back at once
    # (PostgreSQL); otherwise a removed value stays in effect until a restart.
    reload_rereads_file: bool = False
    # The server's main configuration file, relative to the role's base directory (it
    # includes the group's): where the guest reads the value a removed one goes back to.
    config_file: str = ""
    # What the guest's backup engine needs (given the role's base directory and the
    # instance's backup repository).
    backup_settings: Callable[[str, str], dict[str, Any]] = field(
        default=lambda _base, repository: {"dir": repository}
    )
    # The role's `<name>_restore` from a backup chain (oldest first: each a dict of label,
    # location and the details a restore reads, all checked or derived by the control
    # plane) and the time to replay to (epoch seconds, or None).
    restore_vars: Callable[[list[dict[str, Any]], float | None], dict[str, Any]] = field(
        default=lambda _chain, _time: {}
    )
    # What a replica's role reads of its source's files, given the source's base directory
    # (the role's defaults for those paths), besides the address and account; such a
    # replica is made on its source's host only. None: it copies its source over the
    # network, from any host.
    replica_source_files: Callable[[str], dict[str, Any]] | None = None
    # The source admits its replicas' connections by the address they come from
    # (PostgreSQL's pg_hba.conf): each member of a set is told the addresses the others
    # connect from, as its role's `replication_peers`.
    admits_replicas_by_address: bool = False
    # How its backups are named (a datastore with backups sets it).
    backup_naming: BackupNaming = BackupNaming()
    # The settings a replica must hold at least as high as its source (the engine refuses
    # to run it below), each as the role sets it where no configuration group does, given
    # the flavor's vCPUs. Empty: the engine has no such rule.
    hot_standby_settings: Callable[[int], dict[str, int]] = field(default=lambda _vcpus: {})

    @property
    def role(self) -> str:
        """Its Ansible role (`roles/<role>/`) and that role's molecule scenario."""
        return self.name

    def role_var(self, name: str) -> str:
        """The role's variable `name` ("port": "postgresql_port"). Every variable of a
        datastore's role carries the role's name as prefix; this is the one place that
        puts it there."""
        return f"{self.role}_{name}"

    def role_vars(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` under the role's variable names."""
        return {self.role_var(name): value for name, value in values.items()}


def version_of(binary: str, pattern: str) -> str | None:
    """The version a binary prints with --version, as `pattern`'s first group."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(pattern, out.stdout)
    return match.group(1) if match else None


def restore_time_text(epoch: float) -> str:
    """A time as pgBackRest and mariadb-binlog read it (UTC, milliseconds)."""
    whole = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))
    return f"{whole}.{int((epoch % 1) * 1000):03d}"
