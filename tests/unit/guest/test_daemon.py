"""The detached agent is supervised where no systemd is: killed, it is started again;
stopped, it stays stopped with its supervisor; one that never starts is not retried."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from trove_guest import daemon


def _agent(pid_file: Path) -> Callable[[Callable[[], None]], None]:
    """A stand-in for the agent: writes its pid file, says ready, runs until SIGTERM."""

    def run(ready: Callable[[], None]) -> None:
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        pid_file.write_text(f"{os.getpid()}\n")
        ready()
        while not stopping:
            time.sleep(0.05)
        pid_file.unlink(missing_ok=True)

    return run


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def pid_file(tmp_path: Path) -> Path:
    return tmp_path / "guest.pid"


def test_a_killed_agent_is_started_again_and_stop_ends_both(
    pid_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "_is_agent", _alive)
    first = daemon.detach(tmp_path / "guest.log", _agent(pid_file), pid_file)
    supervisor = daemon.supervisor_of(first)
    try:
        _killed_and_started_again(pid_file, first, supervisor)
    finally:  # whatever failed, nothing of the test outlives it
        _kill_all(pid_file, supervisor)


def _kill_all(pid_file: Path, supervisor: int | None) -> None:
    for pid in (daemon.running_pid(pid_file), supervisor):
        if pid is not None and pid != os.getpid() and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_stop_between_restarts_stops_the_supervisor(
    pid_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed, the agent leaves its pid file behind and its supervisor waits to start it
    again: it still counts as running, and a stop then ends the supervisor."""
    monkeypatch.setattr(daemon, "_is_agent", _alive)
    monkeypatch.setattr(daemon, "RESTART_DELAY", 5.0)
    first = daemon.detach(tmp_path / "guest.log", _agent(pid_file), pid_file)
    supervisor = daemon.supervisor_of(first)
    try:
        assert supervisor is not None
        assert daemon.supervisor_file(pid_file).read_text().strip() == str(supervisor)
        os.kill(first, signal.SIGKILL)
        _wait(lambda: not _alive(first))
        assert daemon.running_pid(pid_file) == supervisor  # waiting to restart it
        assert daemon.stop(pid_file) is True
        _wait(lambda: not _alive(supervisor))
        assert not daemon.supervisor_file(pid_file).exists()
        assert daemon.running_pid(pid_file) is None
    finally:
        _kill_all(pid_file, supervisor)


def _killed_and_started_again(pid_file: Path, first: int, supervisor: int | None) -> None:
    assert daemon.running_pid(pid_file) == first
    assert supervisor is not None and supervisor != os.getpid()

    os.kill(first, signal.SIGKILL)
    _wait(lambda: daemon.running_pid(pid_file) not in (None, first, supervisor))
    second = daemon.running_pid(pid_file)
    assert second is not None and daemon.supervisor_of(second) == supervisor

    assert daemon.stop(pid_file) is True
    _wait(lambda: not _alive(second) and not _alive(supervisor))
    assert daemon.running_pid(pid_file) is None


def test_an_agent_that_never_starts_is_not_retried(
    pid_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(ready: Callable[[], None]) -> None:
        raise RuntimeError("no config")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="did not start"):
        daemon.detach(tmp_path / "guest.log", broken, pid_file)
    # Told at once: the supervisor, the pipe's last writer, gave up instead of retrying.
    assert time.monotonic() - started < 5


def test_the_supervisor_logs_in_the_agents_format(
    pid_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a JSON-format deployment the supervisor's own lines are JSON too."""
    import json

    monkeypatch.setattr(daemon, "_is_agent", _alive)
    log_file = tmp_path / "guest.log"
    first = daemon.detach(log_file, _agent(pid_file), pid_file, log_format="json")
    supervisor = daemon.supervisor_of(first)
    try:
        os.kill(first, signal.SIGKILL)
        _wait(lambda: "starting it again" in log_file.read_text())
    finally:
        _kill_all(pid_file, supervisor)
    lines = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    assert any("starting it again" in line["message"] for line in lines), lines
