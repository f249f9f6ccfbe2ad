"""What a playbook is told about an instance: one place for paths, users and role vars.

Datastore roles share a contract: each takes ``port``, ``base_dir`` and the rest below under
its own name as prefix (``postgresql_port``: the spec's `role_var` puts it there), so flows
never branch on the datastore.
"""

from __future__ import annotations

import getpass
import ipaddress
from pathlib import Path
from typing import Any

from trove_datastores.base import Discovered, replication_account
from trove_svc import compute
from trove_svc.compute import guest_wheels
from trove_svc.domain import backups, configurations, errors, replication_sets
from trove_svc.process.settings import Settings
from trove_svc.store.models import Instance
from trove_wire import datastores

# The datastore account the guest agent works through (Trove's name for it).
ADMIN_USER = "os_admin"
# The backup repository in an instance's directory on another host.
HOST_REPOSITORY = "backups"


def os_user(settings: Settings, instance: Instance) -> str:
    """The unprivileged account an instance's datastore runs as: its own, except on this
    machine when the deployment makes no accounts for instances (then the service's)."""
    if not compute.has_own_account(settings, instance):
        return getpass.getuser()
    return settings.instance_user_prefix + str(instance.id).replace("-", "")[:16]


def role_vars(instance: Instance, **values: Any) -> dict[str, Any]:
    """`values` under the names of the instance's datastore role's variables."""
    return datastores.get(instance.datastore_version.datastore.name).role_vars(values)


def role_var(instance: Instance, name: str) -> str:
    """The name of the instance's datastore role's variable `name`."""
    return datastores.get(instance.datastore_version.datastore.name).role_var(name)


def _bind_addresses(place: compute.Place, is_public: bool) -> list[str]:
    if place.own_address:
        # Its own address on a shared host: there alone, public or not (the access rules
        # say who may log in).
        return [str(place.address)]
    if is_public:
        return ["*"]
    # On another host: its own address for clients, loopback for its guest agent.
    loopback = compute.LOCAL_SHARED_ADDRESS
    if place.remote and place.address and place.address != loopback:
        return [loopback, place.address]
    return [loopback]


def replication_peers(settings: Settings, instance: Instance) -> list[dict[str, Any]]:
    """The other members of `instance`'s replication set, each as its replication account
    and the addresses it connects from (its own, and its host's: a connection leaves a
    host from the host's address). Empty for an instance in no set."""
    peers = []
    for member_id in replication_sets.members(instance):
        member = Instance.get_or_none(Instance.id == member_id)
        if member is None or member.id == instance.id:
            continue
        addresses = sorted(
            {a for a in (member.host, _host_address(settings, member)) if a and _is_ip_address(a)}
        )
        if addresses:
            peers.append({"user": replication_account(member.id), "addresses": addresses})
    return peers


def _host_address(settings: Settings, instance: Instance) -> str | None:
    """The address of the host `instance` is on, where its provider knows it (a pool host
    since taken out of the pool: not known)."""
    try:
        return compute.addressing(settings, instance).shared
    except errors.TroveSvcError:
        return None


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def instance_vars(settings: Settings, instance: Instance) -> dict[str, Any]:
    """Extravars for every playbook on this instance; never a secret."""
    version = instance.datastore_version
    datastore = version.datastore.name
    spec = datastores.get(datastore)
    place = compute.place_of(settings, instance)
    instance_dir = place.instance_dir
    access: dict[str, Any] = instance.access or {}
    is_public = bool(access.get("is_public", False))
    cidrs = list(access.get("allowed_cidrs", []))
    if is_public and not cidrs:
        cidrs = ["0.0.0.0/0", "::/0"]
    user = os_user(settings, instance)
    run_as_user = compute.has_own_account(settings, instance)
    makes_backups = spec.capabilities.backups and compute.reaches("Backups", place.provider)
    repository = str(host_repository(settings, instance)) if makes_backups else ""
    base_dir = str(instance_dir / datastore)
    return {
        "trove_instance_id": instance.id,
        "trove_datastore": datastore,
        "trove_compute_provider": place.provider,
        **compute.role_vars(place, user, run_as_user, repository),
        **spec.role_vars(
            {
                "os_user": user,
                "run_as_os_user": run_as_user,
                **spec.binary_vars(Discovered(version.name, version.bin_dir)),
                "base_dir": base_dir,
                "backup_dir": repository,
                "port": instance.port,
                "admin_user": ADMIN_USER,
                "log_group": place.reader_group,
                "bind_addresses": _bind_addresses(place, is_public),
                "allowed_cidrs": cidrs,
                "memory_mb": instance.flavor.ram,
                "vcpus": instance.flavor.vcpus,
                "configuration": configurations.engine_values(instance),
                **(
                    {"replication_peers": replication_peers(settings, instance)}
                    if spec.admits_replicas_by_address
                    else {}
                ),
            }
        ),
        "guest_agent_dir": str(instance_dir),
        "guest_agent_python": place.guest_python,
        "trove_system_python": place.system_python,
        "guest_agent_instance_id": instance.id,
        "guest_agent_datastore": datastore,
        "guest_agent_data_dir": base_dir,
        "guest_agent_heartbeat_interval": settings.heartbeat_interval,
        "guest_agent_log_format": settings.log_format,
        "guest_agent_backup": (
            {**spec.backup_settings(base_dir, repository), "max_rate": settings.backup_max_rate}
            if repository
            else {}
        ),
        "guest_agent_os_user": user,
        "guest_agent_run_as_os_user": run_as_user,
        # This machine's agents are detached daemons; another host's run under systemd
        # where it has it.
        "guest_agent_supervisor": "auto" if place.remote else "daemon",
    }


def host_repository(settings: Settings, instance: Instance) -> Path:
    """Where the instance's guest makes its backups, on the instance's host: on this
    machine, its repository here; on another host, a directory in the instance's own,
    which the control plane copies into its repository here (repository_copies)."""
    place = compute.place_of(settings, instance)
    if place.remote:
        return place.instance_dir / HOST_REPOSITORY
    return backups.repository(settings.backups_dir, instance.id)


def guest_install_vars(settings: Settings, instance: Instance) -> dict[str, Any]:
    """What installs the guest agent on another host (nothing on this machine)."""
    place = compute.place_of(settings, instance)
    if not place.remote:
        return {}
    return {
        "guest_agent_wheelhouse": str(guest_wheels.wheelhouse(settings)),
        "guest_agent_version": guest_wheels.digest(settings),
        "guest_agent_venv": place.guest_venv,
        "guest_agent_system_python": place.system_python,
    }


def datastore_log(settings: Settings, instance: Instance) -> Path | None:
    """The datastore's own log, where a failed start says why; None if it is on another
    host (its fault then says what the run saw)."""
    datastore = instance.datastore_version.datastore.name
    place = compute.place_of(settings, instance)
    if place.remote:
        return None
    return place.instance_dir / datastore / datastores.get(datastore).log_file


def create_vars(
    settings: Settings, instance: Instance, databases: list[dict[str, Any]]
) -> dict[str, Any]:
    """Extravars for building the instance: the common ones and its first databases."""
    return {**instance_vars(settings, instance), **role_vars(instance, databases=databases)}


def create_secrets(
    settings: Settings,
    instance: Instance,
    admin_password: str,
    users: list[dict[str, Any]],
    guest_transport_url: str,
    guest_key: str,
) -> dict[str, Any]:
    """The secrets file's content for a create: read by `no_log` tasks only."""
    datastore = instance.datastore_version.datastore.name
    spec = datastores.get(datastore)
    over_socket = spec.admin_over_socket
    place = compute.place_of(settings, instance)
    return {
        **role_vars(instance, admin_password=admin_password, users=users),
        "guest_agent_transport_url": guest_transport_url,
        "guest_agent_key": guest_key,
        "guest_agent_connection": {
            "host": str(place.instance_dir / datastore) if over_socket else place.local_address,
            "port": instance.port,
            "user": ADMIN_USER,
            "password": admin_password,
            # The datastore's own account (MariaDB makes one for it): not a user's.
            "os_user": os_user(settings, instance),
            # The server's own files, read for the value a removed one goes back to.
            "config_file": str(place.instance_dir / datastore / spec.config_file)
            if spec.config_file
            else "",
        },
    }
