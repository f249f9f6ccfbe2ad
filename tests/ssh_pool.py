"""A pool of SSH hosts for tests and benches: Debian's sshd, one per loopback address.

Each host is an sshd of its own on an address of 127.0.0.0/8 (127.0.0.2, 127.0.0.3 ...),
with its own host key and one authorized client key, and its own directory for instances,
so that the ssh provider reaches "other hosts" exactly as it would over a network. A host
is made unreachable by stopping its sshd with every session it serves.
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests import processes

SSHD = "/usr/sbin/sshd"


@dataclass
class PoolHost:
    name: str
    address: str
    port: int
    directory: Path
    memory_mb: int
    disk_gb: int
    # The network its instances' own addresses come from (the pool's trove_addresses);
    # empty: they share `address`.
    addresses: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def instances_dir(self) -> Path:
        return self.directory / "instances"

    def start(self, client_key: Path) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o711)
        host_key = self.directory / "host_key"
        if not host_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True
            )
        authorized = self.directory / "authorized_keys"
        authorized.write_text(Path(f"{client_key}.pub").read_text())
        config = self.directory / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.address}",
                    f"HostKey {host_key}",
                    f"AuthorizedKeysFile {authorized}",
                    f"PidFile {self.directory / 'sshd.pid'}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "StrictModes no",
                    "UsePAM no",
                    "MaxSessions 50",
                    "MaxStartups 50",
                    "Subsystem sftp internal-sftp",
                ]
            )
            + "\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        log = open(self.directory / "sshd.log", "ab")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.address, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"sshd of {self.name} did not listen on {self.address}:{self.port}")

    def stop(self) -> None:
        """Stop the sshd and every session it serves: the host no longer answers."""
        if self.process is None:
            return
        for pid in [*_descendants(self.process.pid), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.process = None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(proc.name))
    found: list[int] = []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        # A session's processes: sshd's own, and what runs in it until it ends.
        try:
            name = (Path("/proc") / str(child) / "comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("sshd") or name in ("bash", "sh", "python3", "python"):
            found.append(child)
            stack.extend(children.get(child, []))
    return found


@dataclass
class Pool:
    """Hosts and the inventory file the ssh provider reads (TROVE_SVC_HOST_POOL)."""

    directory: Path
    hosts: list[PoolHost]

    @property
    def client_key(self) -> Path:
        return self.directory / "client_key"

    @property
    def inventory(self) -> Path:
        return self.directory / "pool.yml"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    def lend_key_to(self, account: str) -> None:
        """The service reaches the pool as its own account: the operator hands it the key."""
        entry = pwd.getpwnam(account)
        os.chown(self.client_key, entry.pw_uid, entry.pw_gid)

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o711)
        if not self.client_key.exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)],
                check=True,
            )
        for host in self.hosts:
            host.start(self.client_key)
        self.known_hosts.write_text(
            "".join(
                f"[{h.address}]:{h.port} {(h.directory / 'host_key.pub').read_text()}"
                for h in self.hosts
            )
        )
        self.inventory.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "vars": {
                            "ansible_user": "root",
                            "ansible_ssh_private_key_file": str(self.client_key),
                            # The hosts' keys are known, as an operator's are.
                            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} "
                            "-o StrictHostKeyChecking=yes -o ConnectTimeout=5",
                        },
                        "hosts": {
                            host.name: {
                                "ansible_host": host.address,
                                "ansible_port": host.port,
                                "trove_memory_mb": host.memory_mb,
                                "trove_disk_gb": host.disk_gb,
                                "trove_instances_dir": str(host.instances_dir),
                                **({"trove_addresses": host.addresses} if host.addresses else {}),
                            }
                            for host in self.hosts
                        },
                    }
                }
            )
        )

    def host(self, name: str) -> PoolHost:
        return next(h for h in self.hosts if h.name == name)

    def stop(self) -> None:
        for host in self.hosts:
            host.stop()

    def cleanup(self) -> None:
        """Stop the hosts and whatever a test left on them: processes, accounts, files."""
        import shutil

        self.stop()
        processes.remove_leftovers(self.directory)
        shutil.rmtree(self.directory, ignore_errors=True)


def two_hosts(
    directory: Path,
    first_port: int,
    memory_mb: tuple[int, int] = (2048, 1024),
    disk_gb: int = 4,
    addresses: tuple[str, str] = ("", ""),
) -> Pool:
    """Hosts pool-a (127.0.0.2) and pool-b (127.0.0.3), lending trove-svc the memory given
    (pool-a twice pool-b's by default) and `disk_gb` each, and giving their instances
    addresses of their own from `addresses` (empty: none)."""
    named = (("pool-a", "127.0.0.2"), ("pool-b", "127.0.0.3"))
    return Pool(
        directory,
        [
            PoolHost(
                name, address, first_port + n, directory / name, memory_mb[n], disk_gb, addresses[n]
            )
            for n, (name, address) in enumerate(named)
        ],
    )
