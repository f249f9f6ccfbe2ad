"""The ansible-playbook that ansible-runner starts: it asks the task manager's playbook
server (`playbook_server`) to run the playbook in a process forked from one that has
Ansible loaded, and ends as that run ends, with its exit status.

It hands the server its command line, environment, working directory and its standard
input, output and error (the terminal ansible-runner reads the run's events from), waits,
and exits with the run's status. Killed, or stopped by a signal, it closes its connection,
and the server kills the run. Where there is no server, or the server cannot run this
playbook as a fresh ansible-playbook would (another Python, other Ansible settings), it
becomes the real ansible-playbook instead.

Standard library only, run with `python -I -S` (no site, no virtual environment's paths):
the launcher `playbook_server.write_launcher` writes names this file, the socket and the
real ansible-playbook.

    python -I -S playbook_client.py SOCKET ANSIBLE_PLAYBOOK [ansible-playbook's arguments]
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

STANDARD_STREAMS = [0, 1, 2]


def request(argv: list[str]) -> bytes:
    """The request the server reads: its length, then its JSON."""
    body = json.dumps({"argv": argv, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    return struct.pack("!I", len(body)) + body


def run_through(socket_path: str, argv: list[str]) -> int | None:
    """Run `argv` through the server at `socket_path`: the run's exit status (a negative
    one: the signal that ended it), or None if the server did not start it."""
    started = False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.connect(socket_path)
            socket.send_fds(connection, [b"\0"], STANDARD_STREAMS)
            connection.sendall(request(argv))
            for line in connection.makefile("r", encoding="utf-8"):
                reply = json.loads(line)
                if "refused" in reply:
                    return None
                started = started or "started" in reply
                if "status" in reply:
                    return int(reply["status"])
    except (OSError, ValueError):
        pass
    # The server went away: before it started the run (no run), or during it (the run
    # went with it).
    return 1 if started else None


def main() -> None:
    socket_path, ansible_playbook, *arguments = sys.argv[1:]
    argv = [ansible_playbook, *arguments]
    status = run_through(socket_path, argv)
    if status is None:
        os.execv(ansible_playbook, argv)  # noqa: S606 (ansible-playbook, as ansible-runner would)
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


if __name__ == "__main__":
    main()
