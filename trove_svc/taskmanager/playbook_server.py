"""A fork server for ansible-playbook: each run of a task manager is a process forked from
one that has Ansible loaded already, instead of a new interpreter that loads it.

A run's ansible-playbook spends about half of its CPU on what is the same in every run:
importing Ansible, mitogen and their dependencies (about 0.4 s of a core here), parsing
the roles' files and the routing table of Ansible's own collection. The server, started by
the task manager at its first run, does that once (`ansible_preload`), with the Ansible
settings of that first run; then for each run it forks a supervisor, which forks the run
itself: a process that takes the run's command line, environment, working directory and
standard streams and calls ansible-playbook's own `main()`, as a fresh ansible-playbook
would.

ansible-runner still starts a process for each run and reads the run's events from its
terminal: the launcher (`write_launcher`), a small standard-library client
(`playbook_client`) that hands the server its standard streams and ends as the run ends.
If the client is killed (a timeout, a cancel), its connection closes and the supervisor
kills the run and its forks (mitogen's connection process among them: the supervisor is
their subreaper, so they stay below it; what the run started that is not a fork of it,
a datastore's server or a guest agent, is left running, as with ansible-playbook).

A run whose Ansible settings differ from the server's (another strategy, say: Ansible
read them as it was imported) is refused, and the client becomes the real
ansible-playbook; so is any run where no server answers. A server that ended while its
task manager runs (it could not load Ansible) is not started again: the task manager's
runs are new ansible-playbooks from then on.

Only the task manager's own account may connect (the socket is in a 0700 directory, and
the peer's uid is checked).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import io
import json
import os
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trove_svc.security import private_files
from trove_svc.taskmanager import ansible_preload, playbook_client
from trove_svc.taskmanager.ansible_preload import Loaded

# The longest path a Unix socket may have here (108 bytes with the terminating zero).
MAX_SOCKET_PATH = 107

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Request:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    streams: list[int]


# --- the task manager's side ------------------------------------------------------------


class PlaybookServer:
    """The task manager's fork server: started at the first run that asks for it, stopped
    when the task manager ends (it reads its standard input to the end, then leaves)."""

    def __init__(self, state_dir: Path) -> None:
        directory = state_dir / "playbook-server"
        self._socket = directory / f"{os.getpid()}.sock"
        self._launcher = directory / f"{os.getpid()}.launch"
        # What the server itself prints (a traceback if it fails): not the task manager's
        # log, whose lines may have to be JSON. A run's output goes to the run.
        self._log = directory / f"{os.getpid()}.log"
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None

    def launcher(self) -> Path | None:
        """The program ansible-runner should start instead of ansible-playbook, with the
        server running; None where no server runs (its socket's path would be too long,
        or it ended)."""
        if len(str(self._socket)) > MAX_SOCKET_PATH:
            return None
        with self._lock:
            if self._process is None:
                self._start()
            elif self._process.poll() is not None:
                return None
        return self._launcher

    def _start(self) -> None:
        self._socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._socket.unlink(missing_ok=True)
        write_launcher(self._launcher, self._socket)
        ready_read, ready_write = os.pipe()
        log = os.open(self._log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(self._socket), str(ready_write)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                pass_fds=(ready_write,),
                # A terminal's Ctrl-C stops the task manager, which stops the server.
                start_new_session=True,
            )
        finally:
            os.close(log)
            os.close(ready_write)
        # The server writes a byte once it listens (or closes the pipe as it fails).
        with os.fdopen(ready_read, "rb") as ready:
            ready.read(1)


def write_launcher(path: Path, socket_path: Path) -> None:
    """The launcher ansible-runner starts: the client, run by this Python without its
    site, naming the server's socket and the real ansible-playbook beside this Python."""
    command = [
        sys.executable,
        "-I",
        "-S",
        playbook_client.__file__,
        str(socket_path),
        str(Path(sys.executable).parent / "ansible-playbook"),
    ]
    script = f'#!/bin/sh\nexec {shlex.join(command)} "$@"\n'
    private_files.write(path, script)
    path.chmod(0o700)


# --- the server ---------------------------------------------------------------------------


def serve(socket_path: str, ready_fd: int) -> None:
    """Accept runs on `socket_path` until standard input ends (the task manager is gone)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(16)
    os.write(ready_fd, b"\0")
    os.close(ready_fd)
    # A supervisor that ends wakes the loop, which reaps it: its CPU, and its run's, is
    # counted as this process's children's, as a run's is the task manager's.
    child_ended, wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    loaded: Loaded | None = None
    try:
        while True:
            readable, _, _ = select.select([listener, sys.stdin, child_ended], [], [])
            if child_ended in readable:
                os.read(child_ended, 4096)
                _reap_children()
            if sys.stdin in readable and not os.read(sys.stdin.fileno(), 4096):
                return
            if listener not in readable:
                continue
            connection, _ = listener.accept()
            request = _read_request(connection)
            if request is not None and loaded is None:
                loaded = ansible_preload.load_ansible(request.env)
            if request is not None and loaded is not None and os.fork() == 0:
                _supervise(connection, request, loaded)
            connection.close()
            for stream in request.streams if request else ():
                os.close(stream)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(socket_path)


def _reap_children() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _peer_uid(connection: socket.socket) -> int:
    # struct ucred: pid, uid, gid.
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    return int(struct.unpack("3i", credentials)[1])


def _read_request(connection: socket.socket) -> Request | None:
    """The run a client asks for, or None (another account's, or not a request)."""
    connection.settimeout(10)
    try:
        _, streams, _, _ = socket.recv_fds(connection, 1, len(playbook_client.STANDARD_STREAMS))
        if _peer_uid(connection) != os.getuid() or len(streams) != len(
            playbook_client.STANDARD_STREAMS
        ):
            for stream in streams:
                os.close(stream)
            return None
        reader = connection.makefile("rb")
        (length,) = struct.unpack("!I", reader.read(4))
        body = json.loads(reader.read(length))
        return Request(argv=body["argv"], env=body["env"], cwd=body["cwd"], streams=streams)
    except (OSError, ValueError, KeyError, struct.error):
        return None
    finally:
        connection.settimeout(None)


# --- a run's supervisor -------------------------------------------------------------------


def _supervise(connection: socket.socket, request: Request, loaded: Loaded) -> None:
    """Run the request in a process of its own, tell the client how it ended, and leave
    nothing of it running. Never returns."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        if ansible_preload.settings_of(request.env) != loaded.settings or not _same_ansible(
            request.argv[0]
        ):
            _reply(connection, {"refused": "other settings"})
            os._exit(0)
        # What the run leaves behind (mitogen's processes) comes to this process.
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        run = os.fork()
        if run == 0:
            connection.close()
            _run_playbook(request, loaded)
        for stream in request.streams:
            os.close(stream)
        _reply(connection, {"started": run})
        status = _wait(connection, run)
        _kill_forks()
        if status is not None:
            _reply(connection, {"status": status})
    finally:
        os._exit(0)


def _same_ansible(program: str) -> bool:
    """Whether `program` is the ansible-playbook beside this Python (whose Ansible the
    server imported)."""
    return Path(program).parent == Path(sys.executable).parent


def _reply(connection: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        connection.sendall(json.dumps(message).encode() + b"\n")


def _wait(connection: socket.socket, run: int) -> int | None:
    """The run's exit status (a signal's: its negative number); None if the client went
    first (the run is killed)."""
    ended = os.pidfd_open(run)
    while True:
        readable, _, _ = select.select([connection.fileno(), ended], [], [])
        if ended in readable:
            _, status = os.waitpid(run, 0)
            return os.waitstatus_to_exitcode(status)
        if not connection.recv(1):
            return None


def _kill_forks() -> None:
    """Kill every fork of this process below it (the run, its workers and mitogen's
    connection process: they share its command line), until none is left."""
    own = _command_line(os.getpid())
    for _ in range(100):
        forks = [pid for pid in _descendants(os.getpid()) if _command_line(pid) == own]
        if not forks:
            return
        for pid in forks:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _reap_children()


def _command_line(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read()
    except OSError:
        return None


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                # The parent is the second field after the command, which is in brackets.
                parents[int(entry.name)] = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(children)
        frontier.extend(children)
    return found


# --- the run ------------------------------------------------------------------------------


def _run_playbook(request: Request, loaded: Loaded) -> None:
    """Become the run: ansible-playbook's `main()` with the request's command line,
    environment, working directory and standard streams, and the roles' files parsed
    already. Never returns."""
    os.setsid()
    for number, stream in enumerate(request.streams):
        os.dup2(stream, number)
    os.closerange(len(request.streams), 65536)
    # The server's exit handlers are the server's (its Ansible temporary directory).
    atexit._clear()
    os.chdir(request.cwd)
    os.environ.clear()
    os.environ.update(request.env)
    sys.argv = list(request.argv)
    sys.path[0] = str(Path(request.argv[0]).parent)
    # Python's streams (which Ansible's display has wrapped) now write to the run's
    # terminal: line by line, as to a terminal.
    for output in (sys.stdout, sys.stderr):
        if isinstance(output, io.TextIOWrapper):
            output.reconfigure(line_buffering=True)
    status = 1
    try:
        ansible_preload.prepare_run(loaded)
        from ansible.cli.playbook import main

        main()
    except SystemExit as exit_:
        status = _exit_status(exit_.code)
    finally:
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def main() -> None:
    socket_path, ready_fd = sys.argv[1:]
    serve(socket_path, int(ready_fd))


if __name__ == "__main__":
    main()
