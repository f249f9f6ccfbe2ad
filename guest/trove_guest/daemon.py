"""Run the agent detached from whoever started it, and find or stop a running one.

The guest outlives the Ansible run that starts it (as a VM outlives Nova), so it leaves
the run's session; the pid file is how later runs find it.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path


def running_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process is alive and is a guest agent."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"trove_guest" in cmdline or b"trove-guest" in cmdline else None


def stop(pid_file: Path, timeout: float = 15.0) -> bool:
    """SIGTERM the agent, SIGKILL it after `timeout`; False if none was running."""
    pid = running_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(pid_file) == pid and time.monotonic() < deadline:
        time.sleep(0.05)
    if running_pid(pid_file) == pid:
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def detach(log_file: Path, run: Callable[[Callable[[], None]], None], timeout: float = 20.0) -> int:
    """Fork a detached agent; return its pid once it says it started.

    `run` receives a callback to call once the agent is ready (pid file written).
    """
    ready_r, ready_w = os.pipe()
    first = os.fork()
    if first == 0:  # the intermediate child: new session, then the real agent
        os.close(ready_r)
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)

        def ready() -> None:
            os.write(ready_w, f"{os.getpid()}\n".encode())
            os.close(ready_w)

        try:
            run(ready)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.waitpid(first, 0)
    readable, _, _ = select.select([ready_r], [], [], timeout)
    answer = os.read(ready_r, 64) if readable else b""
    os.close(ready_r)
    if not answer.strip():
        raise RuntimeError(f"the guest agent did not start; see {log_file}")
    return int(answer)
