"""The guest contract: every call the control plane makes to a guest, every report a guest
sends, and the error codes that cross the bus, each defined once.

A call is a frozen dataclass: its fields are the call's arguments, and its type parameter
is its result. The agent dispatches a call to the driver method of the same name with the
same arguments; the control plane's client sends instances of these classes. Nothing else
lists the calls (a test checks every driver against `CALLS`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

R = TypeVar("R")

Rows = list[dict[str, Any]]


class ErrorCode(StrEnum):
    NOT_FOUND = "not_found"
    NOT_SUPPORTED = "not_supported"
    CONFLICT = "conflict"
    INVALID = "invalid"
    UNKNOWN_CALL = "unknown_call"
    FAILED = "failed"


class GuestError(Exception):
    """A call failed; the code travels back, the message too (it names no secret)."""

    code: ClassVar[ErrorCode] = ErrorCode.FAILED


class NotFound(GuestError):
    """The database or user named does not exist."""

    code = ErrorCode.NOT_FOUND


class NotSupported(GuestError):
    """The datastore has no such concept (databases on Redis, say)."""

    code = ErrorCode.NOT_SUPPORTED


class Conflict(GuestError):
    """What the call would create exists already."""

    code = ErrorCode.CONFLICT


class Invalid(GuestError):
    """The datastore refused a value (a password it finds too weak, say)."""

    code = ErrorCode.INVALID


class UnknownCall(GuestError):
    """The agent has no such call, or its arguments do not fit."""

    code = ErrorCode.UNKNOWN_CALL


ERRORS: dict[ErrorCode, type[GuestError]] = {
    error.code: error
    for error in (GuestError, NotFound, NotSupported, Conflict, Invalid, UnknownCall)
}


class Call(Generic[R]):
    """Base of every call; `method` is the wire name and the name of the method that
    answers it: the datastore driver's, or (`by_agent`) the agent's own."""

    method: ClassVar[str]
    by_agent: ClassVar[bool] = False

    def arguments(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class ListDatabases(Call[Rows]):
    method = "list_databases"


@dataclass(frozen=True)
class CreateDatabases(Call[None]):
    method = "create_databases"
    databases: Rows


@dataclass(frozen=True)
class DeleteDatabase(Call[None]):
    method = "delete_database"
    name: str


@dataclass(frozen=True)
class ListUsers(Call[Rows]):
    method = "list_users"


@dataclass(frozen=True)
class GetUser(Call[dict[str, Any]]):
    method = "get_user"
    name: str
    host: str | None = None


@dataclass(frozen=True)
class CreateUsers(Call[None]):
    method = "create_users"
    users: Rows


@dataclass(frozen=True)
class DeleteUser(Call[None]):
    method = "delete_user"
    name: str
    host: str | None = None


@dataclass(frozen=True)
class ChangePasswords(Call[None]):
    method = "change_passwords"
    users: Rows


@dataclass(frozen=True)
class UpdateUser(Call[None]):
    method = "update_user"
    name: str
    host: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ListAccess(Call[Rows]):
    method = "list_access"
    name: str
    host: str | None = None


@dataclass(frozen=True)
class GrantAccess(Call[None]):
    method = "grant_access"
    name: str
    host: str | None
    databases: list[str]


@dataclass(frozen=True)
class RevokeAccess(Call[None]):
    method = "revoke_access"
    name: str
    host: str | None
    database: str


@dataclass(frozen=True)
class EnableRoot(Call[dict[str, str]]):
    method = "enable_root"
    password: str


@dataclass(frozen=True)
class IsRootEnabled(Call[bool]):
    method = "is_root_enabled"


@dataclass(frozen=True)
class DisableRoot(Call[None]):
    method = "disable_root"


@dataclass(frozen=True)
class StartBackup(Call[dict[str, Any]]):
    """Start a backup in the background; its progress comes back as BackupReports."""

    method = "start_backup"
    by_agent = True
    backup_id: str
    # full, incremental or differential; the latter two build on the backup labelled
    # `parent_label` (the newest backup, or the newest full one).
    kind: str
    parent_label: str | None = None


@dataclass(frozen=True)
class RemoveBackup(Call[dict[str, Any]]):
    """Remove one backup from the instance's own repository (as the account that owns
    it): its file, or its set in the tool's repository (expired, so the tool's books stay
    right). A backup already gone is no error."""

    method = "remove_backup"
    by_agent = True
    backup_id: str
    label: str


@dataclass(frozen=True)
class ArchiveLogs(Call[dict[str, Any]]):
    """Close and archive the current WAL segment or binary log: a restore to a time
    before now then finds everything up to now in the repository."""

    method = "archive_logs"
    by_agent = True


@dataclass(frozen=True)
class TableRowCounts(Call[dict[str, int]]):
    """Rows per table of every user database (a restore check records them)."""

    method = "table_row_counts"


@dataclass(frozen=True)
class ApplyConfiguration(Call[None]):
    """Put the configuration group's dynamic values in effect now (the role has written
    them to the datastore's file): a reload, SET GLOBAL or CONFIG SET. `values` are the
    engine's own spelling of values the control plane checked against its rules. `reset`
    names the dynamic values taken out of the file, each with the engine's default as it
    describes it: each goes back at once to what the server's own files now give, the
    value its next start has (where they give none, its default)."""

    method = "apply_configuration"
    values: dict[str, str]
    reset: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ShowConfiguration(Call[dict[str, str]]):
    """The tunable parameters' values in effect now, as the engine shows them."""

    method = "show_configuration"


@dataclass(frozen=True)
class AddReplicationAccount(Call[dict[str, str]]):
    """On a source: the account (and, where the datastore has them, the slot) a replica
    streams through, made or given a new password. Answers {"user", "slot"}."""

    method = "add_replication_account"
    replica_id: str
    password: str


@dataclass(frozen=True)
class RemoveReplicationAccount(Call[None]):
    """On a source: drop a replica's account and slot (the replica left or was deleted)."""

    method = "remove_replication_account"
    replica_id: str


@dataclass(frozen=True)
class ReplicationState(Call[dict[str, Any]]):
    """Whether the datastore follows a source, and how far its data goes: `position` grows
    with every write (a WAL location, a GTID sequence number, a replication offset), so
    positions of one replication set compare."""

    method = "replication_state"


@dataclass(frozen=True)
class Promote(Call[dict[str, Any]]):
    """On a replica: apply everything received, stop following, accept writes. Answers
    the replication state at promotion."""

    method = "promote"


CALLS: dict[str, type[Call[Any]]] = {
    call.method: call
    for call in (
        ListDatabases,
        CreateDatabases,
        DeleteDatabase,
        ListUsers,
        GetUser,
        CreateUsers,
        DeleteUser,
        ChangePasswords,
        UpdateUser,
        ListAccess,
        GrantAccess,
        RevokeAccess,
        EnableRoot,
        IsRootEnabled,
        DisableRoot,
        StartBackup,
        RemoveBackup,
        ArchiveLogs,
        TableRowCounts,
        ApplyConfiguration,
        ShowConfiguration,
        AddReplicationAccount,
        RemoveReplicationAccount,
        ReplicationState,
        Promote,
    )
}


def decode_call(method: str, arguments: dict[str, Any]) -> Call[Any]:
    """The call a message asks for; UnknownCall if there is none such or its arguments
    do not fit."""
    call_type = CALLS.get(method)
    if call_type is None:
        raise UnknownCall(f"no call {method!r}")
    try:
        return call_type(**arguments)
    except TypeError as exc:
        raise UnknownCall(f"arguments of {method!r} do not fit") from exc


# Casts: what the control plane tells a guest without waiting for an answer.


@dataclass(frozen=True)
class LeaseGrant:
    """The answer to a source's heartbeat: it may take writes for `lease` seconds from
    when it sent heartbeat `beat` (the conductor recorded the lease before it sent this).
    `resume`: a fence the lease's lapse made may be undone (no switchover or failover of
    its set is under way)."""

    method: ClassVar[str] = "lease_grant"
    beat: str
    lease: float
    resume: bool = True


@dataclass(frozen=True)
class LeaseRelease:
    """The answer to the heartbeat `beat` of a guest that holds a lease its instance no
    longer needs (its replicas are gone, or it was failed over): no deadline any more.
    `resume`: a fence the lease's lapse made may be undone (it stands alone and nothing
    moves in its set); else that fence is the control plane's to undo (a rejoin)."""

    method: ClassVar[str] = "lease_release"
    beat: str
    resume: bool = False


@dataclass(frozen=True)
class ReportNow:
    """Send a heartbeat now, not at the next interval: the control plane waits for one to
    settle the instance (a restart or a change that just ended, its datastore back)."""

    method: ClassVar[str] = "report_now"


CASTS: dict[str, type[Any]] = {
    LeaseGrant.method: LeaseGrant,
    LeaseRelease.method: LeaseRelease,
    ReportNow.method: ReportNow,
}


# Reports: what a guest sends to the conductor unasked.


@dataclass(frozen=True)
class Heartbeat:
    method: ClassVar[str] = "heartbeat"
    operating_status: str
    message: str | None = None
    disk_used_bytes: int | None = None
    # The guest's own name for this heartbeat, which a LeaseGrant answers (None: a guest
    # that knows no leases, which is never granted one).
    beat: str | None = None
    # The guest holds a lease (a LeaseRelease answers, if the instance needs none).
    leased: bool = False


@dataclass(frozen=True)
class BackupReport:
    """How a backup goes: BUILDING, SAVING, then COMPLETED (with what the tool made) or
    FAILED (with why). It names no path: where a backup's files are follows from its id
    and its instance's (trove_datastores.base.BackupNaming)."""

    method: ClassVar[str] = "backup_report"
    backup_id: str
    state: str
    # The tool's own name for the backup (pgBackRest's set label, say).
    label: str | None = None
    # The tool's name and version, as it says them.
    tool: str | None = None
    size: int | None = None
    # SHA-256 of the backup's files, hex (trove_wire.checksums).
    checksum: str | None = None
    # Epoch seconds the data is consistent as of.
    consistent_at: float | None = None
    # What a restore reads besides (the datastore's BackupNaming lists the keys).
    details: dict[str, Any] | None = None
    message: str | None = None


class BadReport(ValueError):
    """A report not of the contract's shape; the message names the field and the rule,
    never the value (it is logged)."""


BACKUP_STATES = ("BUILDING", "SAVING", "COMPLETED", "FAILED")
# A backup made (SAVING, COMPLETED) comes with what the tool made.
MADE_STATES = ("SAVING", "COMPLETED")
MESSAGE_MAX = 1000
TOOL_MAX = 255
LABEL_MAX = 255
# What the store keeps (a signed 64-bit integer).
SIZE_MAX = 2**63 - 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _text(args: Mapping[str, Any], name: str, longest: int, printable: bool) -> str | None:
    """A short name (printable, not empty) or a free text (a message) of at most `longest`."""
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > longest:
        raise BadReport(f"{name} must be a string of at most {longest} characters")
    if printable and not (value and value.isprintable()):
        raise BadReport(f"{name} must be printable and not empty")
    return value


def read_backup_report(args: Mapping[str, Any]) -> BackupReport:
    """The backup report in a message's arguments, each field of its type and within its
    bounds (BadReport says which is not); arguments the contract does not name are
    ignored. A made backup's report says what was made: label, tool, size, checksum,
    consistent_at. Its label and details are the datastore's to check."""
    backup_id = args.get("backup_id")
    if not isinstance(backup_id, str) or not 0 < len(backup_id) <= 64:
        raise BadReport("backup_id must be a string of 1 to 64 characters")
    state = args.get("state")
    if state not in BACKUP_STATES:
        raise BadReport(f"state must be one of {', '.join(BACKUP_STATES)}")
    size = args.get("size")
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= SIZE_MAX
    ):
        raise BadReport(f"size must be an integer from 0 to {SIZE_MAX}")
    checksum = args.get("checksum")
    if checksum is not None and (not isinstance(checksum, str) or not _SHA256.fullmatch(checksum)):
        raise BadReport("checksum must be a SHA-256 in 64 lowercase hex digits")
    consistent_at = args.get("consistent_at")
    if consistent_at is not None and (
        isinstance(consistent_at, bool)
        or not isinstance(consistent_at, int | float)
        or not math.isfinite(consistent_at)
        or consistent_at < 0
    ):
        raise BadReport("consistent_at must be a finite, non-negative number (epoch seconds)")
    details = args.get("details")
    if details is not None and not isinstance(details, dict):
        raise BadReport("details must be an object")
    report = BackupReport(
        backup_id=backup_id,
        state=str(state),
        label=_text(args, "label", LABEL_MAX, printable=True),
        tool=_text(args, "tool", TOOL_MAX, printable=True),
        size=size,
        checksum=checksum,
        consistent_at=None if consistent_at is None else float(consistent_at),
        details=details,
        message=_text(args, "message", MESSAGE_MAX, printable=False),
    )
    if report.state in MADE_STATES:
        missing = [
            name
            for name in ("label", "tool", "size", "checksum", "consistent_at")
            if getattr(report, name) is None
        ]
        if missing:
            raise BadReport(f"a made backup's report needs {', '.join(missing)}")
    return report


REPORTS: dict[str, type[Any]] = {Heartbeat.method: Heartbeat, BackupReport.method: BackupReport}
