"""The lease's last resort: a small process beside the guest agent, as the instance's
account, that stops the datastore's server hard when the guest let its lease run out
without fencing it (the guest hung, say).

The agent feeds it on its standard input, one line each: `arm <deadline>` (a time on the
machine's monotonic clock, which every process shares) or `disarm` (the guest fenced the
datastore, or the agent stops). Armed and past its deadline, it sends the server the
datastore's hard-stop signal (PostgreSQL: SIGQUIT, an immediate shutdown), then SIGKILL if
the server is still there a moment later. If the agent dies, its input ends: an armed
watchdog still stops the server at its deadline, then exits; a disarmed one exits at once.

Its limits: it runs on the same machine, under the same account, as what it guards, so
it stops nothing if the whole machine (or its account's processes) is frozen; it sees
time pass only while it runs (a paused VM whose monotonic clock stops does not fence when
it resumes before the guest's own check does, within a quarter of a second); and a tenant
with root on the instance's account can kill it. The server it stops stays stopped until
the control plane starts it again (a rejoin), or someone does by hand.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

LOG = logging.getLogger("trove_guest.watchdog")

TICK = 0.1
# After the hard-stop signal, how long the server has before SIGKILL.
KILL_AFTER = 2.0


class Watchdog:
    """What the watchdog decides, apart from its input and the signals it sends."""

    def __init__(self, stop_server: Callable[[], None], clock: Callable[[], float]) -> None:
        self._stop_server = stop_server
        self._clock = clock
        self.deadline: float | None = None

    def feed(self, line: str) -> None:
        words = line.split()
        if words[:1] == ["disarm"]:
            self.deadline = None
        elif words[:1] == ["arm"] and len(words) == 2:
            try:
                self.deadline = float(words[1])
            except ValueError:
                LOG.warning("watchdog: a feed it cannot read, ignored")

    def tick(self) -> bool:
        """Stop the server if the deadline passed unfed; True once it did."""
        if self.deadline is None or self._clock() < self.deadline:
            return False
        late = self._clock() - self.deadline
        self.deadline = None
        LOG.error("the guest let its lease run out %.1f s ago: stopping the server", late)
        self._stop_server()
        return True


def _own_pid(pid_file: Path) -> int | None:
    """The server's pid, if its pid file names a live process of this account."""
    try:
        pid = int(pid_file.read_text().split()[0])
        owner = (Path("/proc") / str(pid)).stat().st_uid
    except (OSError, ValueError, IndexError):
        return None
    return pid if owner == os.getuid() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_hard(pid_file: Path, signum: int) -> None:
    pid = _own_pid(pid_file)
    if pid is None:
        LOG.warning("watchdog: no server to stop (%s names none of ours)", pid_file.name)
        return
    os.kill(pid, signum)
    deadline = time.monotonic() + KILL_AFTER
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


def run(watchdog: Watchdog, feed: int) -> None:
    """Until fired, or until its input ended while disarmed."""
    pending = b""
    open_feed = True
    while True:
        if open_feed:
            readable, _, _ = select.select([feed], [], [], TICK)
            if readable:
                chunk = os.read(feed, 4096)
                open_feed = bool(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    watchdog.feed(line.decode(errors="replace"))
        else:
            time.sleep(TICK)
        if watchdog.tick():
            if not open_feed:
                return
        elif not open_feed and watchdog.deadline is None:
            return


class WatchdogProcess:
    """The agent's end: the watchdog process, started when it is first armed (an
    instance never granted a lease has none), and started again if it died."""

    def __init__(self, pid_file: Path, signum: int) -> None:
        self._command = [
            sys.executable,
            "-m",
            "trove_guest.watchdog",
            "--pid-file",
            str(pid_file),
            "--signal",
            signal.Signals(signum).name,
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def arm(self, deadline: float) -> None:
        self._send(f"arm {deadline!r}", start=True)

    def disarm(self) -> None:
        self._send("disarm", start=False)

    def _send(self, line: str, start: bool) -> None:
        for _attempt in (1, 2):  # a watchdog that died is started again, once
            process = self._process
            if process is None or process.poll() is not None:
                if not start:
                    return
                process = self._process = subprocess.Popen(self._command, stdin=subprocess.PIPE)
            assert process.stdin is not None
            try:
                process.stdin.write(f"{line}\n".encode())
                process.stdin.flush()
                return
            except (BrokenPipeError, ValueError):
                self._process = None
        LOG.error("the watchdog could not be fed")

    def close(self) -> None:
        """Disarmed, its input ended: it exits."""
        self.disarm()
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()
            self._process.wait(timeout=5)
        self._process = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trove-guest-watchdog", description=__doc__)
    parser.add_argument("--pid-file", type=Path, required=True, help="the server's pid file")
    parser.add_argument("--signal", default="SIGQUIT", help="the hard-stop signal's name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watchdog %(message)s")
    signum = signal.Signals[args.signal]
    watchdog = Watchdog(lambda: stop_hard(args.pid_file, signum), time.monotonic)
    run(watchdog, sys.stdin.fileno())


if __name__ == "__main__":
    main()
