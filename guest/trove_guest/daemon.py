"""Run the agent detached from whoever started it, keep it running, and find or stop it.

The guest outlives the Ansible run that starts it (as a VM outlives Nova), so it leaves
the run's session. Where no systemd keeps it running, a small supervisor process does: it
runs the agent as its child and starts it again whenever it dies without being asked to
stop (killed, or dead of an error), waiting longer each time it dies young. The pid file
(written by the agent) is how later runs find it; stopping the agent stops its supervisor.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

LOG = logging.getLogger(__name__)

# A dead agent is started again after this long, doubled each time it dies young, up to
# the maximum; one that ran for STABLE_AFTER seconds is no longer young.
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 60.0


def _is_agent(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"trove_guest" in cmdline or b"trove-guest" in cmdline


def running_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process is alive and is a guest agent."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_agent(pid) else None


def supervisor_of(pid: int) -> int | None:
    """The agent's supervisor: its parent, if that is a guest agent's process too."""
    try:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return parent if parent > 1 and _is_agent(parent) else None


def _kill(pid: int | None, signum: int) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def stop(pid_file: Path, timeout: float = 15.0) -> bool:
    """SIGTERM the agent (through its supervisor, which then stops too), SIGKILL both after
    `timeout`; False if none was running."""
    pid = running_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    supervisor = supervisor_of(pid)
    _kill(supervisor or pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _is_agent(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _is_agent(pid):
        _kill(supervisor, signal.SIGKILL)
        _kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def supervise(run: Callable[[Callable[[], None]], None], ready: Callable[[], None]) -> None:
    """Run `run` in a child process, again and again until it ends cleanly or this process
    is told to stop (SIGTERM or SIGINT, passed on to the child)."""
    stopping = False
    child = 0

    def on_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child:
            _kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    delay = RESTART_DELAY
    ever_ready = False
    while not stopping:
        started = time.monotonic()
        told_r, told_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(told_r)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)

            def child_ready(first_start: bool = not ever_ready, told: int = told_w) -> None:
                os.write(told, b"ready")
                os.close(told)
                if first_start:
                    ready()

            code = 0
            try:
                run(child_ready)
            except BaseException:
                LOG.exception("the guest agent failed")
                code = 1
            os._exit(code)
        os.close(told_w)
        _, status = os.waitpid(child, 0)
        child = 0
        ever_ready = ever_ready or bool(os.read(told_r, 16))
        os.close(told_r)
        code = os.waitstatus_to_exitcode(status)
        # An agent that never got started is not started again: whoever started it is
        # told (its pipe closes) and says why.
        if stopping or code == 0 or not ever_ready:
            return
        if time.monotonic() - started >= STABLE_AFTER:
            delay = RESTART_DELAY
        LOG.warning("the guest agent ended (%s); starting it again in %.0f s", code, delay)
        deadline = time.monotonic() + delay
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.1)
        delay = min(delay * 2, RESTART_DELAY_MAX)


def detach(log_file: Path, run: Callable[[Callable[[], None]], None], timeout: float = 20.0) -> int:
    """Start a detached, supervised agent; return its pid once it says it started.

    `run` receives a callback to call once the agent is ready (pid file written).
    """
    ready_r, ready_w = os.pipe()
    first = os.fork()
    if first == 0:  # the intermediate child: new session, then the supervisor
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
            supervise(run, ready)
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
