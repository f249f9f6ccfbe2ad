"""Processes of the tests' deployments, as /proc shows them: which live, which name an
instance, and killing a guest agent as a dead host would."""

from __future__ import annotations

import contextlib
import os
import signal
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


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain `text`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


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
        if b"trove_guest" in cmdline and text.encode() in cmdline:
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
