"""Schema migrations: a store made by an older trove-svc is brought up to date on start.

A new store gets every table as `models` defines it and starts at the newest version. A
store from before versions were kept (no `schema_version` table) is version 0. Each
migration adds what one release added; none ever drops data.
"""

from __future__ import annotations

from collections.abc import Callable

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from trove_svc.store import locks
from trove_svc.store.models import (
    MODELS,
    Backup,
    DatastoreVersion,
    Instance,
    SchemaVersion,
    ServiceStatus,
    Task,
    Token,
)


def _leases_and_keys(migrator: SchemaMigrator) -> None:
    """Claims with leases, task arguments kept in the store, per-instance message keys."""
    migrate(
        migrator.add_column("instance", "status_since", Instance.status_since),
        migrator.add_column("instance", "guest_key", Instance.guest_key),
        migrator.add_column("task", "owner", Task.owner),
        migrator.add_column("task", "lease_expires_at", Task.lease_expires_at),
        migrator.add_column("task", "runs", Task.runs),
        migrator.add_column("task", "args", Task.args),
        migrator.add_column("task", "sealed_secrets", Task.sealed_secrets),
    )
    # Waits are timed from status_since: for existing rows, their last change.
    Instance.update(status_since=Instance.updated_at).execute()


def _list_indexes(migrator: SchemaMigrator) -> None:
    """Instance lists read a page in listing order without sorting the whole table."""
    migrate(
        migrator.add_index("instance", ("project_id", "created_at", "id"), False),
        migrator.add_index("instance", ("created_at", "id"), False),
    )


def _token_use(migrator: SchemaMigrator) -> None:
    """Tokens say when they were last used, and can be revoked."""
    migrate(
        migrator.add_column("token", "last_used_at", Token.last_used_at),
        migrator.add_column("token", "revoked_at", Token.revoked_at),
    )


def _backups(migrator: SchemaMigrator) -> None:
    """Backups, their schedules and strategies: new tables only (made as the models say)."""


def _configurations(migrator: SchemaMigrator) -> None:
    """Configuration groups (a new table), the group an instance has, and the parameters
    a version's engine described."""
    migrate(
        # (indexed as the model says)
        migrator.add_column("instance", "configuration_id", Instance.configuration_id),
        migrator.add_column("instance", "configuration_values", Instance.configuration_values),
        migrator.add_column("instance", "restart_pending", Instance.restart_pending),
        migrator.add_column("datastore_version", "parameters", DatastoreVersion.parameters),
    )


def _replication(migrator: SchemaMigrator) -> None:
    migrate(migrator.add_column("instance", "replica_of_id", Instance.replica_of_id))
    if "service_status" in migrator.database.get_tables():  # else made whole, as models say
        migrate(migrator.add_column("service_status", "healthy_at", ServiceStatus.healthy_at))


def _compute_providers(migrator: SchemaMigrator) -> None:
    """Instances say which compute provider built them and where; pool hosts (a new
    table) say when they stopped answering."""
    migrate(
        migrator.add_column("instance", "provider", Instance.provider),
        migrator.add_column("instance", "server", Instance.server),  # (indexed as said)
    )


def _requeued_tasks(migrator: SchemaMigrator) -> None:
    """A task given back after a failed attempt waits for a task manager from then."""
    migrate(migrator.add_column("task", "queued_at", Task.queued_at))


def _flow_steps(migrator: SchemaMigrator) -> None:
    """A task says which step of its flow it is at, or ended at."""
    migrate(migrator.add_column("task", "current_step", Task.current_step))


def _requesters_projects(migrator: SchemaMigrator) -> None:
    """A task names the project of whoever asked for it (an admin's, acting on another's)."""
    migrate(migrator.add_column("task", "requested_by_project", Task.requested_by_project))


def _own_addresses(migrator: SchemaMigrator) -> None:
    """Instances may share a port, each on an address of its own: an address and port are
    unique together. A local instance that names no address is on 127.0.0.1."""
    Instance.update(host="127.0.0.1").where(
        (Instance.provider == "local") & (Instance.host.is_null() | (Instance.host == ""))
    ).execute()
    indexes = {index.name for index in migrator.database.get_indexes("instance")}
    if "instance_port" in indexes:  # (a store made by hand may lack it)
        migrate(migrator.drop_index("instance", "instance_port"))
    migrate(migrator.add_index("instance", ("host", "port"), True))


def _tenant_deleted_backups(migrator: SchemaMigrator) -> None:
    """A backup its tenant deleted while its tool still keeps its data says since when."""
    if "backup" in migrator.database.get_tables():  # else made whole, as models say
        migrate(migrator.add_column("backup", "deleted_by_tenant_at", Backup.deleted_by_tenant_at))


def _source_leases(migrator: SchemaMigrator) -> None:
    """A source's lease: until when its guest may let it take writes unrenewed."""
    if "service_status" in migrator.database.get_tables():  # else made whole, as models say
        migrate(migrator.add_column("service_status", "lease_until", ServiceStatus.lease_until))


def _warm_pool(migrator: SchemaMigrator) -> None:
    """An instance waiting in a warm pool names its place there."""
    columns = {column.name for column in migrator.database.get_columns("instance")}
    if "warm_slot" not in columns:  # a store made whole by a test's older version has it
        migrate(migrator.add_column("instance", "warm_slot", Instance.warm_slot))


def _double_precision_times(migrator: SchemaMigrator) -> None:
    """Times (seconds since the epoch) in 8 bytes: PostgreSQL made a FloatField a 4-byte
    `real`, which keeps a time to within about two minutes (SQLite's REAL has 8 bytes)."""
    database = migrator.database
    if isinstance(database, peewee.SqliteDatabase):
        return
    tables = set(database.get_tables())
    for model in MODELS:
        table = model._meta.table_name
        if table not in tables:
            continue  # made whole, as models say
        present = {column.name for column in database.get_columns(table)}
        for field in model._meta.sorted_fields:
            if isinstance(field, peewee.DoubleField) and field.column_name in present:
                _widen(migrator, table, field)


def _widen(migrator: SchemaMigrator, table: str, field: peewee.Field) -> None:
    if isinstance(migrator.database, peewee.MySQLDatabase):
        # playhouse's MySQL migrator names the column twice (`MODIFY c c DOUBLE`), which
        # MySQL and MariaDB refuse: the statement is written out here (the names are the
        # models' own).
        nullable = "NULL" if field.null else "NOT NULL"
        migrator.database.execute_sql(
            f"ALTER TABLE `{table}` MODIFY `{field.column_name}` DOUBLE {nullable}"
        )
    else:
        migrate(migrator.alter_column_type(table, field.column_name, field))


MIGRATIONS: list[Callable[[SchemaMigrator], None]] = [
    _leases_and_keys,
    _list_indexes,
    _token_use,
    _backups,
    _configurations,
    _replication,
    _compute_providers,
    _requeued_tasks,
    _flow_steps,
    _requesters_projects,
    _own_addresses,
    _tenant_deleted_backups,
    _source_leases,
    _warm_pool,
    _double_precision_times,
]
LATEST = len(MIGRATIONS)


def _current_version(database: peewee.Database) -> int | None:
    """The store's version; None for an empty store."""
    tables = set(database.get_tables())
    if "schema_version" in tables:
        row = SchemaVersion.select().first()
        return int(row.version) if row else 0
    return 0 if "instance" in tables else None


def upgrade(database: peewee.Database) -> int:
    """Create or migrate the schema; returns the version the store is now at.

    Several processes, of several nodes, open the store at once: a current store is only
    read, and a migration takes the store's schema lock first, then looks again.
    """
    if _current_version(database) == LATEST:
        return LATEST
    with locks.exclusive(database, "schema"):
        version = _current_version(database)
        if version == LATEST:
            return LATEST
        if version is not None:
            migrator = SchemaMigrator.from_database(database)
            for number in range(version + 1, LATEST + 1):
                MIGRATIONS[number - 1](migrator)
        # Tables a migration did not touch (new ones) are made as the models say.
        database.create_tables(MODELS, safe=True)
        SchemaVersion.delete().execute()
        SchemaVersion.create(version=LATEST)
    return LATEST
