"""The lease's watchdog: fed by the guest, it stops the server hard once its deadline
passes unfed, and outlives the agent only while armed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from trove_guest import watchdog
from trove_guest.watchdog import Watchdog, WatchdogProcess


def test_it_fires_once_past_an_unfed_deadline() -> None:
    now = [0.0]
    stops: list[float] = []
    dog = Watchdog(lambda: stops.append(now[0]), lambda: now[0])
    assert not dog.tick()  # never armed
    dog.feed("arm 10.0")
    now[0] = 9.9
    assert not dog.tick()
    dog.feed("arm 20.0")  # fed in time
    now[0] = 15.0
    assert not dog.tick()
    now[0] = 20.0
    assert dog.tick() and stops == [20.0]
    now[0] = 40.0
    assert not dog.tick()  # once
    dog.feed("arm 50.0")
    dog.feed("disarm")
    dog.feed("arm nonsense")
    now[0] = 60.0
    assert not dog.tick() and stops == [20.0]


def _server(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(f"{server.pid}\n/data\n")
    return server, pid_file


def test_the_process_stops_the_server_when_its_agent_is_gone(tmp_path: Path) -> None:
    server, pid_file = _server(tmp_path)
    feed = WatchdogProcess(pid_file, signal.SIGTERM)
    feed.arm(time.monotonic() + 0.5)
    process = feed._process
    assert process is not None and process.stdin is not None
    process.stdin.close()  # the agent died: its last deadline still holds
    assert server.wait(timeout=10) == -signal.SIGTERM
    assert process.wait(timeout=10) == 0


def test_disarmed_it_leaves_the_server_and_exits_with_its_agent(tmp_path: Path) -> None:
    server, pid_file = _server(tmp_path)
    feed = WatchdogProcess(pid_file, signal.SIGTERM)
    feed.arm(time.monotonic() + 0.5)
    feed.close()  # disarmed, input ended
    time.sleep(1.0)
    assert server.poll() is None
    server.kill()
    server.wait()


def test_a_server_that_ignores_the_signal_is_killed(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(60)"
    )
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    # It ignores the signal from now on (a fixed wait was too short under CI's load).
    assert server.stdout is not None and server.stdout.readline() == "ignoring\n"
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(f"{server.pid}\n")
    watchdog.stop_hard(pid_file, signal.SIGTERM)
    assert server.wait(timeout=10) == -signal.SIGKILL


def test_run_ends_when_its_input_ends_disarmed() -> None:
    read, write = os.pipe()
    dog = Watchdog(lambda: None, time.monotonic)
    runner = threading.Thread(target=watchdog.run, args=(dog, read))
    runner.start()
    os.write(write, b"arm 1e12\ndisarm\n")
    os.close(write)
    runner.join(timeout=5)
    assert not runner.is_alive()
    os.close(read)
