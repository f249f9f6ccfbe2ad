"""The fork server: a run forked from it ends, steps and reports as a new ansible-playbook
does; a run it cannot serve as one (other Ansible settings, no server) is a new
ansible-playbook; a canceled run leaves no fork of it running. Real ansible-runner runs on
this host."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trove_svc.process.settings import PROJECT_ROOT, Settings
from trove_svc.taskmanager import playbook_server
from trove_svc.taskmanager.runner import PlaybookRunner, RunResult

# Writes the command line of the process that runs its task (a fork of the controller).
WHO_RUNS = """
- hosts: all
  tasks:
    - name: Write who runs the play
      ansible.builtin.copy:
        content: "{{ lookup('ansible.builtin.pipe', who_runs) }}"
        dest: "{{ who_to }}"
        mode: "0600"
"""

SLEEP = """
- hosts: all
  tasks:
    - name: Sleep
      ansible.builtin.command: sleep 60
      changed_when: false
"""

ROLE_PLAY = """
- hosts: all
  roles:
    - role: says
"""

LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


def _settings(tmp_path: Path, fork_server: bool = True) -> Settings:
    ansible_dir = tmp_path / "ansible"
    (ansible_dir / "playbooks").mkdir(parents=True, exist_ok=True)
    (ansible_dir / "playbooks" / "who.yml").write_text(WHO_RUNS)
    (ansible_dir / "playbooks" / "sleep.yml").write_text(SLEEP)
    (ansible_dir / "ansible.cfg").write_text((PROJECT_ROOT / "ansible.cfg").read_text())
    (ansible_dir / "playbooks" / "role.yml").write_text(ROLE_PLAY)
    (ansible_dir / "roles" / "says" / "tasks").mkdir(parents=True, exist_ok=True)
    return Settings(
        state_dir=tmp_path / "state", ansible_dir=ansible_dir, ansible_fork_server=fork_server
    )


def _who_runs(
    runner: PlaybookRunner, tmp_path: Path, ident: str, **environment: str
) -> tuple[RunResult, list[str], str]:
    steps: list[str] = []
    who = tmp_path / f"{ident}.who"
    result = runner.run(
        ident=ident,
        playbook="who.yml",
        instance_id="i-1",
        extravars={"who_to": str(who), "who_runs": "tr '\\0' ' ' < /proc/$PPID/cmdline"},
        secrets={},
        on_step=steps.append,
        connection=LOCAL,
        environment=environment or None,
    )
    return result, steps, who.read_text() if who.exists() else ""


def _events(result: RunResult) -> list[dict[str, object]]:
    """The run's events, in order, each whole: ansible-runner joined its data and the text
    it printed (one it could not join stays a partial file, without a counter)."""
    events = [
        json.loads(path.read_text()) for path in Path(result.artifact_dir).glob("job_events/*.json")
    ]
    assert all("counter" in event for event in events), "partial events left"
    return sorted(events, key=lambda event: int(str(event["counter"])))


@pytest.mark.parametrize("fork_server", [True, False])
def test_a_run_forked_from_the_server_ends_and_reports_as_a_new_ansible_playbook(
    tmp_path: Path, fork_server: bool
) -> None:
    runner = PlaybookRunner(_settings(tmp_path, fork_server))
    for ident in ("t-1", "t-2"):  # the first one loads the server's Ansible
        result, steps, who = _who_runs(runner, tmp_path, ident)
        assert result.ok, result.describe_failure()
        assert steps == ["Write who runs the play"]
        assert ("playbook_server" in who) is fork_server
        assert ("ansible-playbook" in who) is not fork_server
        events = _events(result)
        assert [event["event"] for event in events[-3:]] == [
            "runner_on_start",
            "runner_on_ok",
            "playbook_on_stats",
        ]
        assert "PLAY RECAP" in str(events[-1]["stdout"])


def test_a_run_with_other_ansible_settings_is_a_new_ansible_playbook(tmp_path: Path) -> None:
    runner = PlaybookRunner(_settings(tmp_path))
    assert "playbook_server" in _who_runs(runner, tmp_path, "t-1")[2]
    result, _, who = _who_runs(runner, tmp_path, "t-2", ANSIBLE_FORKS="3")
    assert result.ok, result.describe_failure()
    assert "ansible-playbook" in who and "playbook_server" not in who


def test_a_failed_run_ends_with_its_step_and_status(tmp_path: Path) -> None:
    runner = PlaybookRunner(_settings(tmp_path))
    result = runner.run(
        ident="t-1",
        playbook="who.yml",
        instance_id="i-1",
        extravars={"who_to": str(tmp_path / "no" / "such" / "directory")},
        secrets={},
        connection=LOCAL,
    )
    assert not result.ok and result.rc == 2
    assert result.failed_step == "Write who runs the play"


def _server_of(settings: Settings) -> int:
    """The fork server of the runs below `settings.state_dir` (its socket is there)."""
    marker = str(settings.state_dir / "playbook-server").encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if parent == os.getpid() and b"playbook_server" in command and marker in command:
                return int(entry.name)
    raise AssertionError("no fork server runs")


def _forks_of(server: int) -> list[int]:
    """The processes other than `server` with its command line: its forks."""
    own = Path(f"/proc/{server}/cmdline").read_bytes()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != server:
            try:
                if (entry / "cmdline").read_bytes() == own:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_canceled_run_leaves_no_fork_of_the_server_running(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    runner = PlaybookRunner(settings)
    started: list[float] = []
    result = runner.run(
        ident="t-1",
        playbook="sleep.yml",
        instance_id="i-1",
        extravars={},
        secrets={},
        on_step=lambda _: started.append(time.monotonic()),
        cancel=lambda: bool(started) and time.monotonic() - started[0] > 1,
        connection=LOCAL,
    )
    assert result.canceled
    server = _server_of(settings)
    deadline = time.monotonic() + 10
    while _forks_of(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _forks_of(server) == []


def test_once_its_server_ended_a_task_managers_runs_are_new_ansible_playbooks(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    runner = PlaybookRunner(settings)
    assert "playbook_server" in _who_runs(runner, tmp_path, "t-1")[2]
    server = _server_of(settings)
    os.kill(server, signal.SIGKILL)
    os.waitpid(server, 0)
    result, _, who = _who_runs(runner, tmp_path, "t-2")
    assert result.ok, result.describe_failure()
    assert "ansible-playbook" in who and "playbook_server" not in who


def test_without_a_server_the_launcher_is_ansible_playbook(tmp_path: Path) -> None:
    launcher = tmp_path / "launch"
    playbook_server.write_launcher(launcher, tmp_path / "no-server.sock")
    version = subprocess.run(
        [str(launcher), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("ansible-playbook [core ")


def test_a_server_that_hangs_up_before_it_starts_the_run_leaves_it_to_ansible_playbook(
    tmp_path: Path,
) -> None:
    launcher, socket_path = tmp_path / "launch", tmp_path / "hangs-up.sock"
    playbook_server.write_launcher(launcher, socket_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(socket_path))
        listener.listen()
        hang_up = threading.Thread(target=lambda: listener.accept()[0].close())
        hang_up.start()
        version = subprocess.run(
            [str(launcher), "--version"], capture_output=True, text=True, check=True
        )
        hang_up.join()
    assert version.stdout.startswith("ansible-playbook [core ")


def test_the_servers_socket_is_in_a_directory_of_the_service_alone(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    runner = PlaybookRunner(settings)
    assert _who_runs(runner, tmp_path, "t-1")[0].ok
    directory = settings.state_dir / "playbook-server"
    assert directory.stat().st_mode & 0o777 == 0o700
    assert sorted(path.name for path in directory.iterdir()) == [
        f"{os.getpid()}.launch",
        f"{os.getpid()}.log",
        f"{os.getpid()}.sock",
    ]


def test_a_socket_path_too_long_for_the_system_means_no_server(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100)
    assert playbook_server.PlaybookServer(deep).launcher() is None


def _role_says(words: str, to: Path) -> str:
    return f"""
- name: Say it
  ansible.builtin.copy:
    content: "{words}"
    dest: "{to}"
    mode: "0600"
"""


def test_a_role_file_changed_since_the_server_parsed_it_is_read_anew(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    said = tmp_path / "said"
    role_tasks = settings.ansible_dir / "roles" / "says" / "tasks" / "main.yml"
    role_tasks.write_text(_role_says("first", said))
    runner = PlaybookRunner(settings)
    for ident, words in (("t-1", "first"), ("t-2", "first"), ("t-3", "second words")):
        role_tasks.write_text(_role_says(words, said))
        result = runner.run(
            ident=ident,
            playbook="role.yml",
            instance_id="i-1",
            extravars={},
            secrets={},
            connection=LOCAL,
        )
        assert result.ok, result.describe_failure()
        assert said.read_text() == words
