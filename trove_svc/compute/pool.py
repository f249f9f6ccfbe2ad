"""The ssh provider's host pool: an Ansible inventory the operator already has.

Each host is reached as the inventory says (``ansible_host``, ``ansible_port``,
``ansible_user``, ``ansible_ssh_private_key_file``, become ...), and may say how much of it
trove-svc may use (``trove_memory_mb``, ``trove_disk_gb``) and where instances live on it
(``trove_instances_dir``), and a network each instance there takes an address of its own
from (``trove_addresses``, added on ``trove_address_interface``, ``lo`` unless said; without
it instances share the host's address, each at a port of its own). The file is read
through Ansible's own inventory code, so any format Ansible reads (YAML, INI) and group
variables work as they do in a playbook.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trove_svc.domain import errors

DEFAULT_INSTANCES_DIR = "/var/lib/trove-svc/instances"
# Where the guest agent's virtual environments live on a host: beside the instances.
GUEST_AGENT_DIR_NAME = "guest-agent"
DEFAULT_ADDRESS_INTERFACE = "lo"
# A network interface's name, as Linux allows it (it reaches `ip` as one argument).
_INTERFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")


@dataclass(frozen=True)
class PoolHost:
    name: str
    # Where clients reach the host (and the host's ssh server): ansible_host.
    address: str
    ssh_port: int
    # How much trove-svc may use; None: no limit was given.
    memory_mb: int | None
    disk_gb: int | None
    instances_dir: str
    # The ansible_* variables a run on this host needs (connection, user, key, become).
    connection: dict[str, Any] = field(default_factory=dict)
    # The network its instances' own addresses come from (None: they share `address`), and
    # the interface they are added on.
    addresses: ipaddress.IPv4Network | None = None
    address_interface: str = DEFAULT_ADDRESS_INTERFACE

    @property
    def guest_agent_dir(self) -> str:
        return str(Path(self.instances_dir).parent / GUEST_AGENT_DIR_NAME)

    @property
    def python(self) -> str:
        """The host's own Python (it makes the guest agent's environment)."""
        return str(self.connection.get("ansible_python_interpreter") or "/usr/bin/python3")


def _plain(value: Any) -> Any:
    """Ansible's own string and container types, as plain Python values."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _optional_int(name: str, host: str, value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise errors.ServiceUnavailable(
            f"The host pool says {name}={value!r} for {host}: not a whole number."
        ) from exc


# ansible_* names Ansible itself adds to a host's variables: not the operator's settings.
_NOT_CONNECTION = frozenset(
    {
        "ansible_facts",
        "ansible_playbook_python",
        "ansible_version",
        "ansible_config_file",
        "ansible_check_mode",
        "ansible_diff_mode",
        "ansible_forks",
        "ansible_verbosity",
        "ansible_run_tags",
        "ansible_skip_tags",
        "ansible_inventory_sources",
    }
)


_PASSWORDS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_sudo_pass",
    }
)


def _addresses(host: str, value: Any) -> ipaddress.IPv4Network | None:
    if value in (None, ""):
        return None
    try:
        return ipaddress.IPv4Network(str(value))
    except ValueError as exc:
        raise errors.ServiceUnavailable(
            f"The host pool says trove_addresses={value!r} for {host}: not an IPv4 network "
            "(such as 10.0.5.0/24, host bits zero)."
        ) from exc


def _interface(host: str, value: Any) -> str:
    name = str(value or DEFAULT_ADDRESS_INTERFACE)
    if not _INTERFACE.fullmatch(name):
        raise errors.ServiceUnavailable(
            f"The host pool says trove_address_interface={name[:40]!r} for {host}: not a "
            "network interface's name."
        )
    return name


def _read(path: Path) -> list[PoolHost]:
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=inventory)
    hosts = []
    for host in inventory.get_hosts():
        found = _plain(variables.get_vars(host=host, include_hostvars=False))
        passwords = sorted(_PASSWORDS & found.keys())
        if passwords:
            raise errors.ServiceUnavailable(
                f"The host pool gives {host.name} a password ({', '.join(passwords)}): use a "
                "key and passwordless become; a password would reach each run's files."
            )
        connection = {
            key: value
            for key, value in found.items()
            if key.startswith("ansible_") and key not in _NOT_CONNECTION
        }
        connection.setdefault("ansible_python_interpreter", "/usr/bin/python3")
        address = str(found.get("ansible_host") or host.name)
        connection["ansible_host"] = address
        hosts.append(
            PoolHost(
                name=host.name,
                address=address,
                ssh_port=int(found.get("ansible_port") or 22),
                memory_mb=_optional_int("trove_memory_mb", host.name, found.get("trove_memory_mb")),
                disk_gb=_optional_int("trove_disk_gb", host.name, found.get("trove_disk_gb")),
                instances_dir=str(found.get("trove_instances_dir") or DEFAULT_INSTANCES_DIR),
                connection=connection,
                addresses=_addresses(host.name, found.get("trove_addresses")),
                address_interface=_interface(host.name, found.get("trove_address_interface")),
            )
        )
    return sorted(hosts, key=lambda h: h.name)


_cache: dict[str, tuple[float, list[PoolHost]]] = {}
_cache_lock = threading.Lock()


def hosts(pool_file: str) -> list[PoolHost]:
    """The pool's hosts, read again whenever the file changes."""
    path = Path(pool_file)
    try:
        changed = path.stat().st_mtime
    except OSError as exc:
        raise errors.ServiceUnavailable(f"The host pool {pool_file} cannot be read: {exc}") from exc
    with _cache_lock:
        cached = _cache.get(pool_file)
        if cached is not None and cached[0] == changed:
            return cached[1]
        read = _read(path)
        _cache[pool_file] = (changed, read)
        return read


def host(pool_file: str, name: str) -> PoolHost:
    """One host of the pool by name (an instance's), or why it cannot be used."""
    for candidate in hosts(pool_file):
        if candidate.name == name:
            return candidate
    raise errors.Conflict(f"Host {name} is no longer in the host pool ({pool_file}).")
