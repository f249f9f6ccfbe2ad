"""The guest contract: every call the control plane makes to a guest, every report a guest
sends, and the error codes that cross the bus, each defined once.

A call is a frozen dataclass: its fields are the call's arguments, and its type parameter
is its result. The agent dispatches a call to the driver method of the same name with the
same arguments; the control plane's client sends instances of these classes. Nothing else
lists the calls (a test checks every driver against `CALLS`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
    engine's own spelling of values the control plane checked against its rules."""

    method = "apply_configuration"
    values: dict[str, str]


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


# Reports: what a guest sends to the conductor unasked.


@dataclass(frozen=True)
class Heartbeat:
    method: ClassVar[str] = "heartbeat"
    operating_status: str
    message: str | None = None
    disk_used_bytes: int | None = None


@dataclass(frozen=True)
class BackupReport:
    """How a backup goes: BUILDING, SAVING, then COMPLETED (with what the tool made) or
    FAILED (with why)."""

    method: ClassVar[str] = "backup_report"
    backup_id: str
    state: str
    label: str | None = None
    tool: str | None = None
    location: str | None = None
    size: int | None = None
    checksum: str | None = None
    consistent_at: float | None = None
    details: dict[str, Any] | None = None
    message: str | None = None


REPORTS: dict[str, type[Any]] = {Heartbeat.method: Heartbeat, BackupReport.method: BackupReport}
