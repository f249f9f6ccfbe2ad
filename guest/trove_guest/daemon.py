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

from trove_wire import logs

LOG = logging.getLogger(__name__)

# A dead agent is started again after this long, doubled each time it dies young, up to
# the maximum; one that ran for STABLE_AFTER seconds is no longer young.
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 60.0


def is_agent_command(cmdline: bytes) -> bool:
    """Whether a process's command line is a guest agent's (its supervisor's too; never
    the lease's watchdog beside it, which outlives the agent on purpose)."""
    if b"trove_guest.watchdog" in cmdline:
        return False
    return b"trove_guest" in cmdline or b"trove-guest" in cmdline


def _is_agent(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return is_agent_command(cmdline)


def _pid_in(path: Path) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_agent(pid) else None


def supervisor_file(pid_file: Path) -> Path:
    """Where an agent's supervisor keeps its own pid, beside the agent's pid file."""
    return pid_file.with_name(pid_file.name + ".supervisor")


def running_pid(pid_file: Path) -> int | None:
    """The running agent's pid; or, while it is between restarts, its supervisor's."""
    return _pid_in(pid_file) or _pid_in(supervisor_file(pid_file))


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
    """SIGTERM the supervisor (which stops its agent) or a lone agent, SIGKILL what is left
    after `timeout`; False if none was running."""
    agent = _pid_in(pid_file)
    supervisor = _pid_in(supervisor_file(pid_file)) or (
        supervisor_of(agent) if agent is not None else None
    )
    running = [pid for pid in (supervisor, agent) if pid is not None]
    if running:
        _kill(running[0], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(_is_agent(pid) for pid in running) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in running:
            if _is_agent(pid):
                _kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    supervisor_file(pid_file).unlink(missing_ok=True)
    return bool(running)


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def supervise(
    run: Callable[[Callable[[], None]], None], ready: Callable[[], None], pid_file: Path
) -> None:
    """Run `run` in a child process, again and again until it ends cleanly, its instance's
    directory is gone, or this process is told to stop (SIGTERM or SIGINT, passed on to
    the child)."""
    stopping = False
    child = 0

    def on_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child:
            _kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    own_file = supervisor_file(pid_file)
    own_file.write_text(f"{os.getpid()}\n")
    delay = RESTART_DELAY
    ever_ready = False
    try:
        while not stopping and pid_file.parent.is_dir():
            started = time.monotonic()
            told_r, told_w = os.pipe()
            # A stop signal between the fork and knowing the child's pid would be lost:
            # held until then (the child takes the default handlers before it lets go).
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            child = os.fork()
            if child == 0:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
                os.close(told_r)
                _run_child(run, ready if not ever_ready else None, told_w)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            os.close(told_w)
            _, status = os.waitpid(child, 0)
            child = 0
            ever_ready = ever_ready or bool(os.read(told_r, 16))
            os.close(told_r)
            code = os.waitstatus_to_exitcode(status)
            # An agent that never got started is not started again: whoever started it
            # is told (its pipe closes) and says why.
            if stopping or code == 0 or not ever_ready:
                return
            if time.monotonic() - started >= STABLE_AFTER:
                delay = RESTART_DELAY
            LOG.warning("the guest agent ended (%s); starting it again in %.0f s", code, delay)
            deadline = time.monotonic() + delay
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.1)
            delay = min(delay * 2, RESTART_DELAY_MAX)
    finally:
        own_file.unlink(missing_ok=True)


def _run_child(
    run: Callable[[Callable[[], None]], None], ready: Callable[[], None] | None, told: int
) -> None:
    """The agent's process: tell the supervisor (and, the first time, the starter) once it
    is ready; exit 0 when it ends cleanly, 1 when it fails."""

    def child_ready() -> None:
        os.write(told, b"ready")
        os.close(told)
        if ready is not None:
            ready()

    code = 0
    try:
        run(child_ready)
    except BaseException:
        LOG.exception("the guest agent failed")
        code = 1
    os._exit(code)


def detach(
    log_file: Path,
    run: Callable[[Callable[[], None]], None],
    pid_file: Path,
    timeout: float = 20.0,
    log_format: str = "text",
) -> int:
    """Start a detached, supervised agent; return its pid once it says it started.

    `run` receives a callback to call once the agent is ready (pid file written). The
    supervisor logs to `log_file` in `log_format`, as the agent does.
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
        logs.configure("guest", log_format, stream=os.fdopen(2, "w", closefd=False))

        def ready() -> None:
            os.write(ready_w, f"{os.getpid()}\n".encode())
            os.close(ready_w)

        try:
            supervise(run, ready, pid_file)
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
