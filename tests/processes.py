"""Processes of the tests' deployments, as /proc shows them: which live, which name an
instance, and stopping or killing them as a slow or dead host would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _proc_state(pid)


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def _command_lines() -> Iterator[tuple[int, str]]:
    """(pid, command line) of every live process but this one."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        yield int(proc.name), cmdline


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain `text`."""
    return [cmdline for _, cmdline in _command_lines() if text in cmdline]


def pids_mentioning(text: str) -> list[int]:
    """Ids of live processes whose command line contains `text`."""
    return [pid for pid, cmdline in _command_lines() if text in cmdline]


def pids_working_in(directory: str) -> list[int]:
    """Ids of live processes whose working directory is `directory` or below it (a server
    that renames its process, as Redis does, names no path on its command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(proc / "cwd").removesuffix(" (deleted)")
        except OSError:
            continue
        if (cwd == directory or cwd.startswith(directory + "/")) and pid_alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    """Send `sig` to each of `pids` that still runs."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def guest_agents_mentioning(text: str) -> int:
    """How many guest agents run with `text` on their command line: each a supervisor with
    its agent (or an agent alone), counted once."""
    from trove_guest import daemon

    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if daemon.is_agent_command(cmdline) and text.encode() in cmdline:
            count += daemon.supervisor_of(int(proc.name)) is None
    return count


def kill_guest(pid_file: Path) -> None:
    """Kill an instance's guest agent as a dead host would: the agent and the supervisor
    that would start it again."""
    from trove_guest import daemon

    pid = int(pid_file.read_text().split()[0])
    for victim in (daemon.supervisor_of(pid), pid):
        if victim is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)


def pids_of_instance(instance_dir: Path) -> list[int]:
    """Every live process of an instance, as freezing its machine would stop them: those
    naming its directory or working in it, and (where it has an account of its own, not
    this test's nor the service's) every process of that account."""
    found = set(pids_mentioning(str(instance_dir))) | set(pids_working_in(str(instance_dir)))
    owner = instance_dir.stat().st_uid
    if owner not in (os.getuid(), instance_dir.parent.stat().st_uid):
        for proc in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if proc.name.isdigit() and proc.stat().st_uid == owner:
                    found.add(int(proc.name))
    found.discard(os.getpid())
    return sorted(pid for pid in found if pid_alive(pid))


def command_of(pid_file: Path) -> tuple[list[str], int]:
    """The command line of the process a pid file names, and its account: to start it again
    as it was, as a machine coming back would."""
    proc = Path("/proc") / pid_file.read_text().split()[0]
    return [arg.decode() for arg in (proc / "cmdline").read_bytes().split(b"\0") if arg], (
        proc.stat().st_uid
    )


def start_again(command: list[str], uid: int) -> None:
    """Start a process as `command_of` found it, detached."""
    subprocess.Popen(
        command,
        user=uid,
        cwd="/",
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def remove_leftovers(directory: Path) -> None:
    """Kill every process a test left working in or naming `directory` (an instance's
    server, its guest agent), then remove the accounts whose homes are there."""
    where = str(directory)
    subprocess.run(["pkill", "-9", "-f", where], check=False)
    signal_all(pids_working_in(where), signal.SIGKILL)
    # userdel refuses an account whose processes are still exiting.
    deadline = time.monotonic() + 10
    while (processes_mentioning(where) or pids_working_in(where)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for line in Path("/etc/passwd").read_text().splitlines():
        name, *_, home, _shell = line.split(":")
        if home.startswith(where):
            _remove_account(name)


# userdel's exit codes: removed, or no such account (removed meanwhile by its deployment).
USERDEL_DONE = (0, 6)


def _remove_account(name: str) -> None:
    """userdel, after killing what the account still runs anywhere; retried while its
    processes exit (userdel refuses till then), and said if the account stays."""
    deadline = time.monotonic() + 10
    while True:
        subprocess.run(["pkill", "-9", "-u", name], check=False)
        removed = subprocess.run(["userdel", name], check=False, capture_output=True, text=True)
        if removed.returncode in USERDEL_DONE or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if removed.returncode not in USERDEL_DONE:
        warnings.warn(f"account {name} left behind: {removed.stderr.strip()}", stacklevel=2)
