"""peewee models for everything the service records.

Models are bound to a database by `trove_svc.store.db.open_store`; nothing here does I/O.
"""

from __future__ import annotations

import json
from typing import Any

import peewee

database_proxy = peewee.DatabaseProxy()


class JSONField(peewee.TextField):
    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class Datastore(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36)
    name = peewee.CharField(unique=True, max_length=64)
    default_version_id = peewee.CharField(null=True, max_length=36)


class DatastoreVersion(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36)
    datastore = peewee.ForeignKeyField(Datastore, backref="versions", on_delete="CASCADE")
    name = peewee.CharField(max_length=64)
    # Where the datastore's binaries live on the host, handed to its role.
    packages = peewee.CharField(default="", max_length=255)
    bin_dir = peewee.CharField(default="", max_length=255)
    active = peewee.BooleanField(default=True)
    # Its configuration parameters as the engine describes them (trove_svc.domain.parameter_rules).
    parameters = JSONField(null=True)

    class Meta:
        indexes = ((("datastore", "name"), True),)


class Flavor(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36)
    name = peewee.CharField(max_length=64)
    ram = peewee.IntegerField()  # MB
    vcpus = peewee.IntegerField()
    disk = peewee.IntegerField(default=0)


class Instance(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36)
    name = peewee.CharField(max_length=255)
    project_id = peewee.CharField(max_length=64, index=True)
    datastore_version = peewee.ForeignKeyField(DatastoreVersion, on_delete="RESTRICT")
    flavor = peewee.ForeignKeyField(Flavor, on_delete="RESTRICT")
    volume_size = peewee.IntegerField()  # GB
    status = peewee.CharField(max_length=32, index=True)
    # The playbook that builds the instance has finished; ACTIVE waits on a heartbeat too.
    provisioned = peewee.BooleanField(default=False)
    current_step = peewee.CharField(null=True, max_length=255)
    # The address clients reach the instance at, and the port its datastore listens on
    # there (no two instances share both: trove_svc.taskmanager.ports).
    host = peewee.CharField(null=True, max_length=255)
    port = peewee.IntegerField(null=True)
    # The compute provider that built it (trove_svc.compute), and its place there: the
    # pool host's name (ssh) or the Nova server's id (openstack); none on the local one.
    provider = peewee.CharField(max_length=16, default="local")
    server = peewee.CharField(null=True, max_length=255, index=True)
    access = JSONField(default=dict)
    # When `status` last changed: waiting states are timed from here.
    status_since = peewee.DoubleField(default=0)
    # The instance's message key, sealed under the service key (trove_svc.security.keys).
    guest_key = peewee.TextField(null=True)
    # The configuration group attached (trove_svc.domain.configurations), if any.
    configuration_id = peewee.CharField(null=True, max_length=36, index=True)
    # The values the datastore's file holds now, and whether some wait for a restart.
    configuration_values = JSONField(null=True)
    restart_pending = peewee.BooleanField(default=False)
    # The source this instance replicates from (trove_svc.domain.replication_sets), if it is
    # a replica.
    replica_of_id = peewee.CharField(null=True, max_length=36, index=True)
    fault_message = peewee.TextField(null=True)
    fault_details = peewee.TextField(null=True)
    fault_at = peewee.DoubleField(null=True)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()
    # While the instance waits in a warm pool, unclaimed: its pool and place there
    # (`postgresql:15:1#0`, trove_svc.domain.warm_pool). Unique, so that two task managers
    # refilling a pool never both fill one place; a claim clears it.
    warm_slot = peewee.CharField(null=True, max_length=160, unique=True)

    class Meta:
        # Lists are read in this order, a page at a time, per project or for the admin.
        indexes = (
            (("project_id", "created_at", "id"), False),
            (("created_at", "id"), False),
            (("host", "port"), True),
        )


class ServiceStatus(BaseModel):
    """What the guest last said about the datastore; written by the conductor only."""

    instance = peewee.ForeignKeyField(Instance, primary_key=True, on_delete="CASCADE")
    operating_status = peewee.CharField(max_length=32, default="NEW")
    message = peewee.TextField(null=True)
    disk_used_bytes = peewee.BigIntegerField(null=True)
    last_sent_at = peewee.DoubleField(null=True)
    last_received_at = peewee.DoubleField(null=True)
    # When the guest last said HEALTHY: a source silent or failing since longer than the
    # failover limit is failed over (trove_svc.taskmanager.failover).
    healthy_at = peewee.DoubleField(null=True)
    # A source's lease (trove_svc.domain.source_leases): its guest fences it before this
    # time unless a newer grant reaches it. Null: never granted one.
    lease_until = peewee.DoubleField(null=True)


class Task(BaseModel):
    """One operation on an instance, and the Ansible run that carried it out."""

    id = peewee.CharField(primary_key=True, max_length=36)
    instance_id = peewee.CharField(max_length=36, index=True)  # outlives the instance
    project_id = peewee.CharField(max_length=64)
    action = peewee.CharField(max_length=64)
    state = peewee.CharField(max_length=16, default="QUEUED")
    # The task manager that claimed the task, and until when its claim holds unless renewed.
    owner = peewee.CharField(max_length=128, null=True)
    lease_expires_at = peewee.DoubleField(null=True)
    # Ansible runs started for the task (more than one only after a takeover or a retry).
    runs = peewee.IntegerField(default=0)
    # What the flow needs besides the instance (never a secret) ...
    args = JSONField(default=dict)
    # ... and its secrets, sealed under the service key; cleared when the task ends.
    sealed_secrets = peewee.TextField(null=True)
    # Who asked: a user and the project their token is for, which is not the task's when an
    # admin acts on another project's instance.
    requested_by = peewee.CharField(max_length=255, default="")
    requested_by_project = peewee.CharField(max_length=64, default="")
    request_id = peewee.CharField(max_length=64, default="")
    playbook = peewee.CharField(max_length=255, null=True)
    rc = peewee.IntegerField(null=True)
    failed_step = peewee.CharField(max_length=255, null=True)
    # The step of its flow the task is at, or ended at (`trove_svc.taskmanager.engine`).
    current_step = peewee.CharField(max_length=255, null=True)
    message = peewee.TextField(null=True)
    artifact_dir = peewee.CharField(max_length=1024, null=True)
    created_at = peewee.DoubleField()
    # When it was last given back to wait for a task manager (an attempt failed); the
    # wait for one is timed from here, else from created_at.
    queued_at = peewee.DoubleField(null=True)
    started_at = peewee.DoubleField(null=True)
    finished_at = peewee.DoubleField(null=True)


class Token(BaseModel):
    """An API token; only its SHA-256 is kept, the token itself is shown once."""

    token_hash = peewee.CharField(primary_key=True, max_length=64)
    project_id = peewee.CharField(max_length=64)
    user = peewee.CharField(max_length=255)
    is_admin = peewee.BooleanField(default=False)
    created_at = peewee.DoubleField()
    expires_at = peewee.DoubleField(null=True)
    # Kept to the minute: a write per request would cost the store more than it tells.
    last_used_at = peewee.DoubleField(null=True)
    revoked_at = peewee.DoubleField(null=True)


class Backup(BaseModel):
    """A backup of an instance, made by its guest with the datastore's own tool. It outlives
    the instance. Its files are in the instance's repository, at a path derived from its ids
    (trove_svc.domain.backups.location): `location` shows that path (as locationRef) and is written
    by the control plane, never taken from a report; nothing acts on it."""

    id = peewee.CharField(primary_key=True, max_length=36)
    name = peewee.CharField(max_length=255)
    description = peewee.TextField(null=True)
    project_id = peewee.CharField(max_length=64, index=True)
    instance_id = peewee.CharField(max_length=36, index=True)
    datastore = peewee.CharField(max_length=64)
    datastore_version = peewee.CharField(max_length=64)
    parent_id = peewee.CharField(max_length=36, null=True)
    kind = peewee.CharField(max_length=16, default="full")  # full, incremental
    state = peewee.CharField(max_length=16, default="NEW", index=True)
    # What the guest reported, checked: the tool's own id for the backup (of the tool's
    # grammar) and its version; the size and checksum of what it made. (Not `location`.)
    label = peewee.CharField(max_length=255, null=True)
    tool = peewee.CharField(max_length=255, null=True)
    location = peewee.CharField(max_length=1024, null=True)
    size = peewee.BigIntegerField(null=True)
    checksum = peewee.CharField(max_length=128, null=True)
    details = JSONField(default=dict)
    fail_reason = peewee.TextField(null=True)
    schedule_id = peewee.CharField(max_length=36, null=True, index=True)
    # The data's consistent point (a restore to this backup gives the data as of then).
    consistent_at = peewee.DoubleField(null=True)
    verified_at = peewee.DoubleField(null=True)
    verify_outcome = peewee.TextField(null=True)
    # When its tenant deleted it while its tool still kept its data (the base of the
    # archived logs): hidden from the tenant since, removed once nothing keeps it.
    deleted_by_tenant_at = peewee.DoubleField(null=True)
    created_at = peewee.DoubleField()

    @classmethod
    def tenant_visible(cls) -> peewee.Expression:
        """The backups their tenant sees (lists, gets, quotas, restores, retention,
        parents): all but those it deleted whose data their tool still keeps."""
        return cls.deleted_by_tenant_at.is_null()

    updated_at = peewee.DoubleField()


class Schedule(BaseModel):
    """Backups an instance takes by itself, on a cron schedule, with retention."""

    id = peewee.CharField(primary_key=True, max_length=36)
    instance_id = peewee.CharField(max_length=36, index=True)
    project_id = peewee.CharField(max_length=64, index=True)
    name = peewee.CharField(max_length=255)
    cron = peewee.CharField(max_length=128)
    incremental = peewee.BooleanField(default=False)
    retention_count = peewee.IntegerField(null=True)
    retention_days = peewee.DoubleField(null=True)
    # Restore the newest backup into a throwaway instance and check it, after each run.
    verify = peewee.BooleanField(default=False)
    next_run_at = peewee.DoubleField(index=True)
    last_run_at = peewee.DoubleField(null=True)
    created_at = peewee.DoubleField()


class BackupStrategy(BaseModel):
    """Where a project's (or an instance's) backups are stored: the local repository or
    an S3-compatible bucket (Trove's backup strategies)."""

    id = peewee.CharField(primary_key=True, max_length=36)
    project_id = peewee.CharField(max_length=64, index=True)
    instance_id = peewee.CharField(max_length=36, null=True)
    backend = peewee.CharField(max_length=16, default="local")  # local, s3
    container = peewee.CharField(max_length=255, null=True)
    created_at = peewee.DoubleField()


class Configuration(BaseModel):
    """A configuration group: parameter values for instances of one datastore version."""

    id = peewee.CharField(primary_key=True, max_length=36)
    project_id = peewee.CharField(max_length=64, index=True)
    name = peewee.CharField(max_length=255)
    description = peewee.TextField(null=True)
    datastore_version = peewee.ForeignKeyField(DatastoreVersion, on_delete="RESTRICT")
    values = JSONField(default=dict)
    created_at = peewee.DoubleField()
    updated_at = peewee.DoubleField()


class Worker(BaseModel):
    """A running task manager or conductor, as last seen (for the health check)."""

    id = peewee.CharField(primary_key=True, max_length=128)
    kind = peewee.CharField(max_length=32, index=True)
    hostname = peewee.CharField(max_length=255)
    pid = peewee.IntegerField()
    started_at = peewee.DoubleField()
    seen_at = peewee.DoubleField(index=True)


class SchemaVersion(BaseModel):
    """One row: the migration the store's schema is at (trove_svc.store.migrations)."""

    version = peewee.IntegerField()


class PoolHost(BaseModel):
    """What the ssh provider learned about a pool host: it did not answer (since when,
    why). Hosts themselves come from the pool's inventory, not from the store."""

    name = peewee.CharField(primary_key=True, max_length=255)
    unreachable_since = peewee.DoubleField(null=True)
    unreachable_reason = peewee.TextField(null=True)


MODELS: list[type[BaseModel]] = [
    Datastore,
    DatastoreVersion,
    Flavor,
    Instance,
    ServiceStatus,
    Task,
    Token,
    Backup,
    Schedule,
    BackupStrategy,
    Configuration,
    Worker,
    PoolHost,
    SchemaVersion,
]
