"""How resources look on the wire: Trove's v1.0 shapes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trove_svc.domain import status as instance_status
from trove_svc.domain.wire_time import iso

if TYPE_CHECKING:  # rows the domain hands over; the API never queries them itself
    from trove_svc.compute.placement import HostUse
    from trove_svc.store.models import (
        Backup,
        BackupStrategy,
        Configuration,
        Datastore,
        DatastoreVersion,
        Flavor,
        Instance,
        Schedule,
        ServiceStatus,
    )

GB = 1024**3


timestamp = iso


def links(base: str, project_id: str, kind: str, item_id: str) -> list[dict[str, str]]:
    return [
        {"href": f"{base}/v1.0/{project_id}/{kind}/{item_id}", "rel": "self"},
        {"href": f"{base}/{kind}/{item_id}", "rel": "bookmark"},
    ]


def flavor(base: str, project_id: str, row: Flavor) -> dict[str, Any]:
    return {
        "id": row.id,
        "str_id": row.id,
        "name": row.name,
        "ram": row.ram,
        "vcpus": row.vcpus,
        "disk": row.disk,
        "links": links(base, project_id, "flavors", row.id),
    }


def datastore_version(base: str, project_id: str, row: DatastoreVersion) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "version": row.name,
        "datastore": row.datastore_id,
        "active": row.active,
        "packages": row.packages,
        "image": "",
        "links": links(base, project_id, "datastores/versions", row.id),
    }


def datastore(
    base: str, project_id: str, row: Datastore, versions: list[DatastoreVersion]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "links": links(base, project_id, "datastores", row.id),
        "versions": [
            {
                "id": v.id,
                "name": v.name,
                "version": v.name,
                "active": v.active,
                "links": links(base, project_id, "datastores/versions", v.id),
            }
            for v in versions
        ],
    }
    if row.default_version_id:
        body["default_version"] = row.default_version_id
    return body


def instance(base: str, row: Instance, status: ServiceStatus | None) -> dict[str, Any]:
    version = row.datastore_version
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "status": instance_status.shown(row.status, row.restart_pending),
        "operating_status": status.operating_status if status else "NEW",
        "links": links(base, row.project_id, "instances", row.id),
        "flavor": {
            "id": row.flavor_id,
            "links": links(base, row.project_id, "flavors", row.flavor_id),
        },
        "datastore": {
            "type": version.datastore.name,
            "version": version.name,
            "version_number": version.name,
        },
        "volume": {"size": row.volume_size},
        "region": "local",
        "tenant_id": row.project_id,
        "created": timestamp(row.created_at),
        "updated": timestamp(row.updated_at),
        "access": {
            "is_public": bool(row.access.get("is_public", False)),
            "allowed_cidrs": list(row.access.get("allowed_cidrs", [])),
        },
    }
    if status is not None and status.disk_used_bytes is not None:
        body["volume"]["used"] = round(status.disk_used_bytes / GB, 3)
    if status is not None and status.last_received_at is not None:
        body["service_status_updated"] = timestamp(status.last_received_at)
    if row.host:
        body["ip"] = [row.host]
        body["addresses"] = [{"address": row.host, "type": "private"}]
        body["hostname"] = row.host
    if row.port:
        body["port"] = row.port
    if row.current_step:
        body["current_step"] = row.current_step
    if row.configuration_id:
        body["configuration"] = {
            "id": row.configuration_id,
            "links": links(base, row.project_id, "configurations", row.configuration_id),
        }
    if row.replica_of_id:
        body["replica_of"] = {
            "id": row.replica_of_id,
            "links": links(base, row.project_id, "instances", row.replica_of_id),
        }
    if row.fault_message:
        body["fault"] = {
            "message": row.fault_message,
            "created": timestamp(row.fault_at),
            "details": row.fault_details or "",
        }
    return body


def replicas(base: str, row: Instance, rows: list[Instance]) -> dict[str, Any]:
    """A source's replicas, as Trove's detail view shows them (nothing for others)."""
    if not rows:
        return {}
    return {
        "replicas": [
            {"id": r.id, "links": links(base, row.project_id, "instances", r.id)} for r in rows
        ]
    }


def mgmt_instance(base: str, row: Instance, status: ServiceStatus | None) -> dict[str, Any]:
    """The admin's view: the instance plus where it runs and what it is doing."""
    body = instance(base, row, status)
    # Where it lives: the pool host or Nova server (this machine on the local provider).
    body["server"] = {
        "host": row.server or ("localhost" if row.provider == "local" else None),
        "address": row.host,
        "provider": row.provider,
        "local_id": row.id,
    }
    body["task_description"] = row.current_step or "No tasks for the instance."
    body["deleted"] = False
    # A warm pool's instance (no tenant's, status WARM once built): its pool and place.
    if row.warm_slot:
        body["warm_pool"] = row.warm_slot
    return body


def pool_host(use: HostUse) -> dict[str, Any]:
    """A pool host with what trove-svc may use of it, what its instances take, and whether
    it answers (placements skip one that does not)."""
    host = use.host
    return {
        "name": host.name,
        "address": host.address,
        "ssh_port": host.ssh_port,
        "instances": use.instances,
        "memory_mb": {"total": host.memory_mb, "used": use.memory_mb},
        "disk_gb": {"total": host.disk_gb, "used": use.disk_gb},
        "reachable": use.unreachable_since is None,
        "unreachable_since": timestamp(use.unreachable_since) if use.unreachable_since else None,
        "unreachable_reason": use.unreachable_reason,
    }


def backup(base: str, row: Backup) -> dict[str, Any]:
    """Trove's backup, and beyond it: kind, tool, checksum, and the last restore check."""
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "locationRef": row.location,
        "instance_id": row.instance_id,
        "project_id": row.project_id,
        "created": timestamp(row.created_at),
        "updated": timestamp(row.updated_at),
        "size": round(row.size / GB, 6) if row.size is not None else None,
        "status": row.state,
        "parent_id": row.parent_id,
        "datastore": {
            "type": row.datastore,
            "version": row.datastore_version,
            "version_id": row.datastore_version,
        },
        "kind": row.kind,
        "tool": row.tool,
        "checksum": f"sha256:{row.checksum}" if row.checksum else None,
        "links": links(base, row.project_id, "backups", row.id),
    }
    if row.fail_reason:
        body["fail_reason"] = row.fail_reason
    if row.consistent_at is not None:
        body["consistent_at"] = timestamp(row.consistent_at)
    if row.verified_at is not None:
        body["verified_at"] = timestamp(row.verified_at)
        body["verify_outcome"] = row.verify_outcome
        # What the check found in the restored copy: rows per table.
        body["verify_row_counts"] = dict(row.details.get("row_counts") or {})
    return body


def schedule(row: Schedule) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "instance_id": row.instance_id,
        "cron": row.cron,
        "incremental": row.incremental,
        "retention_count": row.retention_count,
        "retention_days": row.retention_days,
        "verify": row.verify,
        "next_run": timestamp(row.next_run_at),
        "last_run": timestamp(row.last_run_at),
        "created": timestamp(row.created_at),
    }


def backup_strategy(row: BackupStrategy) -> dict[str, Any]:
    return {
        "project_id": row.project_id,
        "instance_id": row.instance_id,
        "backend": row.backend,
        "swift_container": row.container,
    }


def configuration(
    base: str, row: Configuration, instance_count: int | None = None
) -> dict[str, Any]:
    version = row.datastore_version
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "datastore_name": version.datastore.name,
        "datastore_version_id": version.id,
        "datastore_version_name": version.name,
        "datastore_version_number": version.name,
        "created": timestamp(row.created_at),
        "updated": timestamp(row.updated_at),
        "links": links(base, row.project_id, "configurations", row.id),
    }
    if instance_count is not None:
        body["values"] = dict(row.values)
        body["instance_count"] = instance_count
    return body
