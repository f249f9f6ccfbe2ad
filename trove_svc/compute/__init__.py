"""Compute providers: where an instance lives, and how a playbook reaches it.

Every per-provider decision is made here (docs/compute-providers.md): flows and playbooks
ask this module and never branch on the provider. A provider is a role,
``compute_<provider>``, that the playbooks include by name; this module hands that role
its variables (``compute_<provider>_*``) and the run its inventory host.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trove_svc.compute import placement, pool
from trove_svc.domain import errors
from trove_svc.process.settings import Settings
from trove_svc.store.models import Flavor, Instance, database_proxy

# Where instances live on a server the openstack provider made (its volume is mounted at
# each instance's directory), and the guest agent's environments beside them.
SERVER_INSTANCES_DIR = "/var/lib/trove-svc/instances"
SERVER_GUEST_AGENT_DIR = "/var/lib/trove-svc/guest-agent"
OPENSTACK_SDK_SHIM = "roles/compute_openstack/files/sdk_compat"
# The guest agent's environment on another host: one path, whatever the agent's version
# (upgraded in place), so runs on instances made by an older trove-svc still find it.
GUEST_VENV = "venv"
# Where this machine's instances without an address of their own listen.
LOCAL_SHARED_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class Place:
    """Where one instance lives."""

    provider: str
    # The directory on its host that holds the instance's own (data, config, logs).
    instance_dir: Path
    # The inventory variables of a run on it (connection, user, interpreter).
    connection: dict[str, Any]
    # The address clients reach it at, if known before it is built.
    address: str | None = None
    # Whether that address is the instance's own on a host it shares with others (its
    # datastore listens there alone, at its standard port).
    own_address: bool = False
    role_vars: dict[str, Any] = field(default_factory=dict)
    # On another host: the guest agent's own environment (it has the datastores' drivers,
    # so Ansible's modules run in it too), and the host's Python that makes it.
    guest_venv: str = ""
    system_python: str = sys.executable
    # Added to the environment of the run's ansible-playbook (and so of its modules).
    environment: dict[str, str] = field(default_factory=dict)
    # A group that may read the instance's directory, its datastore's log and its backups:
    # the control plane's, where it reads them there (this machine) as an account of its own.
    reader_group: str = ""

    @property
    def guest_python(self) -> str:
        return f"{self.guest_venv}/bin/python" if self.guest_venv else sys.executable

    @property
    def local_address(self) -> str:
        """Where the guest agent and the datastore's role reach the datastore over TCP."""
        return str(self.address) if self.own_address else LOCAL_SHARED_ADDRESS

    @property
    def remote(self) -> bool:
        return self.provider != "local"


@dataclass(frozen=True)
class Addressing:
    """How an instance on a provider is addressed (trove_svc.taskmanager.ports gives it)."""

    # The host's own address, which instances without one of their own share, each at a
    # port of its own; None where the provider learns the address while building.
    shared: str | None
    # The network each instance's own address is taken from, at its datastore's standard
    # port; None: no such network.
    network: ipaddress.IPv4Network | None = None
    # Whether those addresses are on this machine (probed before one is given).
    here: bool = False
    # Each instance has a server of its own, whose address (learned while building) it
    # listens on at the standard port.
    own_server: bool = False


def addressing(settings: Settings, instance: Instance) -> Addressing:
    """How `instance` is addressed, by its provider."""
    provider = instance.provider or "local"
    if provider == "openstack":
        return Addressing(shared=None, own_server=True)
    if provider == "ssh":
        host = pool.host(settings.host_pool, str(instance.server))
        return Addressing(shared=host.address, network=host.addresses)
    network = ipaddress.IPv4Network(settings.local_addresses) if settings.local_addresses else None
    return Addressing(shared=LOCAL_SHARED_ADDRESS, network=network, here=True)


def has_own_account(settings: Settings, instance: Instance) -> bool:
    """Whether the instance's datastore runs as an account of its own (made, and removed,
    with it): always on other hosts; on this machine, where the deployment makes them."""
    return instance.provider not in (None, "", "local") or settings.instance_accounts


def _local(settings: Settings, instance: Instance) -> Place:
    connection: dict[str, Any] = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
    }
    if settings.instance_accounts and os.geteuid() != 0:
        # Instances' accounts, directories and processes are root's to make: the run
        # reaches root through become, and the service itself stays unprivileged.
        connection["ansible_become"] = True
    # Instances of their own accounts: the service's account reads (checks, copies, quotes)
    # through its group, and keeps a deleted instance's backups.
    service = settings.service_user if settings.instance_accounts else ""
    return Place(
        provider="local",
        instance_dir=settings.instances_dir / instance.id,
        connection=connection,
        address=instance.host or LOCAL_SHARED_ADDRESS,
        own_address=(instance.host or LOCAL_SHARED_ADDRESS) != LOCAL_SHARED_ADDRESS,
        reader_group=service,
        role_vars={
            "compute_local_reader_group": service,
            "compute_local_backup_keeper": service or "root",
        },
    )


def _remote_connection(connection: dict[str, Any], guest_venv: str) -> dict[str, Any]:
    """A run on another host: its modules run in the guest agent's environment, which has
    the datastores' drivers. The create's first steps, which make that environment, set
    `trove_python` to the host's own Python (a fact, so that tasks the provider's role
    delegates to the controller keep the controller's Python)."""
    interpreter = f"{{{{ trove_python | default('{guest_venv}/bin/python') }}}}"
    return {**connection, "ansible_python_interpreter": interpreter}


def _ssh(settings: Settings, instance: Instance) -> Place:
    host = pool.host(settings.host_pool, str(instance.server))
    guest_venv = f"{host.guest_agent_dir}/{GUEST_VENV}"
    return Place(
        provider="ssh",
        instance_dir=Path(host.instances_dir) / instance.id,
        connection=_remote_connection(host.connection, guest_venv),
        guest_venv=guest_venv,
        system_python=host.python,
        address=instance.host or host.address,
        own_address=bool(instance.host) and instance.host != host.address,
        # A pool host is known: its key must be in the operator's known_hosts (a host
        # that answers with another key is refused, not trusted with the secrets).
        environment={"ANSIBLE_HOST_KEY_CHECKING": "True"},
        role_vars={
            "compute_ssh_instances_root": host.instances_dir,
            # Its own address, which the role adds to the host (none: it shares the host's).
            "compute_ssh_address": instance.host if instance.host != host.address else "",
            "compute_ssh_address_interface": host.address_interface,
        },
    )


def _openstack(settings: Settings, instance: Instance) -> Place:
    access: dict[str, Any] = instance.access or {}
    guest_venv = f"{SERVER_GUEST_AGENT_DIR}/{GUEST_VENV}"
    connection: dict[str, Any] = {
        "ansible_user": settings.openstack_ssh_user,
        "ansible_become": settings.openstack_ssh_user != "root",
    }
    if instance.host:
        connection["ansible_host"] = instance.host
    if settings.openstack_ssh_key_file:
        connection["ansible_ssh_private_key_file"] = settings.openstack_ssh_key_file
    return Place(
        provider="openstack",
        instance_dir=Path(SERVER_INSTANCES_DIR) / instance.id,
        connection=_remote_connection(connection, guest_venv),
        guest_venv=guest_venv,
        system_python="/usr/bin/python3",
        address=instance.host,
        # The openstack.cloud modules the ansible package carries read openstack.version,
        # which openstacksdk no longer imports; the role's shim puts it back. Mitogen runs
        # modules in interpreters of its own, which only the process environment reaches.
        environment={"PYTHONPATH": str(settings.ansible_dir / OPENSTACK_SDK_SHIM)},
        role_vars={
            "compute_openstack_cloud": settings.openstack_cloud,
            "compute_openstack_name": f"trove-{instance.id}",
            "compute_openstack_flavor": instance.flavor.name,
            "compute_openstack_image": settings.openstack_image,
            "compute_openstack_network": settings.openstack_network,
            "compute_openstack_key_name": settings.openstack_key_name,
            "compute_openstack_volume_size": instance.volume_size,
            "compute_openstack_port": instance.port,
            "compute_openstack_allowed_cidrs": list(access.get("allowed_cidrs", [])),
        },
    )


def place_of(settings: Settings, instance: Instance) -> Place:
    """Where `instance` lives, by the provider that built it."""
    provider = instance.provider or "local"
    if provider == "ssh":
        return _ssh(settings, instance)
    if provider == "openstack":
        return _openstack(settings, instance)
    return _local(settings, instance)


def role_vars(place: Place, os_user: str, create_user: bool, backup_dir: str) -> dict[str, Any]:
    """The provider role's variables: where the instance's directory and account are."""
    prefix = f"compute_{place.provider}_"
    return {
        prefix + "instance_dir": str(place.instance_dir),
        prefix + "os_user": os_user,
        prefix + "create_user": create_user,
        # Only this machine keeps backup repositories for now.
        **({prefix + "backup_dir": backup_dir} if backup_dir else {}),
        **place.role_vars,
    }


def purge_vars(instance: Instance, purge: bool) -> dict[str, Any]:
    """Tell the provider's teardown whether to remove the instance's files and account."""
    return {f"compute_{instance.provider or 'local'}_purge": purge}


def placing(settings: Settings) -> AbstractContextManager[Any]:
    """The transaction a create is placed and recorded in: on the ssh pool, one placement
    at a time, so that two creates never both take a host's last room."""
    if settings.compute_provider == "ssh":
        return placement.placing()
    return database_proxy.atomic()


def new_place(
    settings: Settings, flavor: Flavor, volume_gb: int, away_from: Instance | None
) -> dict[str, Any]:
    """The columns that say where a new instance goes, chosen before anything is built
    (the ssh pool answers 409 when no host has room). A replica is kept off its source's
    host when another has room."""
    provider = settings.compute_provider
    if provider == "ssh":
        avoid = away_from.server if away_from is not None else None
        host = placement.place(settings.host_pool, flavor, volume_gb, avoid)
        return {"provider": "ssh", "server": host.name, "host": host.address}
    if provider == "openstack":
        # The server and its address are known once it is made.
        return {"provider": "openstack"}
    return {"provider": "local", "host": LOCAL_SHARED_ADDRESS}


def require_room_to_grow(
    settings: Settings, instance: Instance, flavor: Flavor | None, volume_gb: int | None
) -> None:
    """A resize where the instance lives: a pool host must have room for what it adds
    (409 if not). This machine and clouds are not counted here."""
    if instance.provider != "ssh" or not instance.server:
        return
    more_memory = flavor.ram - instance.flavor.ram if flavor is not None else 0
    more_disk = volume_gb - instance.volume_size if volume_gb is not None else 0
    placement.require_room_to_grow(settings.host_pool, instance.server, more_memory, more_disk)


# Where each feature that reaches beyond an instance's own host is set up: backups and
# restores wherever the control plane reaches the host over SSH (it copies repositories
# to and from it); replication within this machine only (its access rules admit loopback,
# and a MariaDB replica is copied from its source's files).
REACHES = {
    "Backups": ("local", "ssh"),
    "Restores": ("local", "ssh"),
    "Replicas": ("local", "ssh"),
}


def reaches(what: str, provider: str | None) -> bool:
    """Whether `what` (a key of REACHES) is set up for instances of `provider`."""
    return (provider or "local") in REACHES[what]


def require_reach(what: str, *providers: str) -> None:
    """`what` (a key of REACHES) for instances of `providers`: refused, saying so, where
    it is not set up yet."""
    elsewhere = sorted({p for p in providers if not reaches(what, p)})
    if elsewhere:
        raise errors.NotImplementedYet(
            f"{what} are not available yet for instances on {', '.join(elsewhere)} hosts; "
            f"they are on {' and '.join(REACHES[what])} hosts."
        )
