"""The one wrapper around `ansible_runner.run()`.

Each run gets a private data dir (0700) named after its task (and its attempt, if the task
runs again), a static inventory of its one instance, its variables in that dir's
`env/extravars`, and its secrets in a 0600 vars file outside that dir, which the playbook
reads in a `no_log` task and which is removed when the run ends. Variables and secrets are
written by `run_inputs`, every string marked unsafe; none is on a command line. Secrets
never enter extravars, the environment or the artifacts. Old run dirs are pruned so
artifacts never fill the disk.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from trove_svc.process.settings import Settings
from trove_svc.security import private_files
from trove_svc.taskmanager import run_inputs
from trove_svc.taskmanager.playbook_server import PlaybookServer

LOG = logging.getLogger(__name__)

StepCallback = Callable[[str], None]

# ansible-runner asks a run's cancel callback once per wait on the playbook's output, every
# `pexpect_timeout` seconds (5 by default): a run whose task was taken from it stops within
# this long.
RUNNER_SETTINGS = {"pexpect_timeout": 0.25}

STRATEGY_PLUGINS = Path(__file__).parent / "strategy_plugins"


@dataclass(frozen=True)
class RunResult:
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    rc: int
    artifact_dir: str
    failed_step: str | None = None
    failed_message: str | None = None
    # The instance's host did not answer (ssh): the run never reached it.
    unreachable: bool = False
    # What the play reported with set_stats (a compute role's `trove_place`, say).
    reported: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    @property
    def canceled(self) -> bool:
        """Stopped because the task was taken from this run (deleted, timed out, taken over)."""
        return self.status == "canceled"

    def describe_failure(self) -> str:
        if self.status == "timeout":
            return "The task ran past its time limit and was stopped."
        if self.failed_step:
            detail = f": {self.failed_message}" if self.failed_message else ""
            return f"Step '{self.failed_step}' failed{detail}"
        return f"The playbook ended with status {self.status} (rc {self.rc})."


def _step_name(event_data: dict[str, Any]) -> str:
    task = str(event_data.get("task", "")).strip()
    role = str(event_data.get("role", "")).strip()
    return f"{role} : {task}" if role else task


def _failure_message(event_data: dict[str, Any]) -> str | None:
    res = event_data.get("res") or {}
    # A loop's own message only says "One or more items failed": its failed item's says why.
    failed_items = [r for r in res.get("results") or [] if isinstance(r, dict) and r.get("failed")]
    if failed_items:
        res = failed_items[0]
    message = str(res.get("msg") or "").strip()
    # A command's own words say more than Ansible's "non-zero return code".
    stderr = str(res.get("stderr") or "").strip()
    if stderr and (not message or message == "non-zero return code"):
        message = f"{message}: {stderr}" if message else stderr
    message = message or str(res.get("reason") or "").strip()
    if not message:
        return None
    return message if len(message) <= 500 else message[:500] + "..."


def inventory(instance_id: str, connection: dict[str, Any]) -> dict[str, Any]:
    """The run's inventory: its one instance, reached as its compute provider says
    (trove_svc.compute)."""
    return {"all": {"hosts": {instance_id: dict(connection)}}}


def through_mitogen(connection: dict[str, Any]) -> dict[str, Any]:
    """`connection` as mitogen's strategy reaches it fastest. This machine reached as root
    through become is mitogen's own sudo connection: one interpreter, started through sudo,
    instead of one started as the service and a second started through sudo from it (about
    a quarter of a second, and as much of a core, per run). Any other connection as is."""
    becomes_root = connection.get("ansible_become") and (
        connection.get("ansible_become_user", "root") == "root"
    )
    if connection.get("ansible_connection") != "local" or not becomes_root:
        return connection
    rest = {
        key: value
        for key, value in connection.items()
        if key not in ("ansible_connection", "ansible_become", "ansible_become_user")
    }
    return {**rest, "ansible_connection": "mitogen_sudo", "ansible_user": "root"}


def shares_python(connection: dict[str, Any]) -> bool:
    """Whether `connection` reaches this machine with the task manager's own Python, whose
    files on disk are those ansible-playbook runs from."""
    return (
        connection.get("ansible_connection") == "local"
        and connection.get("ansible_python_interpreter") == sys.executable
    )


def remove_leftovers(secrets_dir: Path, runs_dir: Path, task_id: str) -> int:
    """Remove the secrets files and inventories that runs of `task_id` left (a run killed
    with its task manager never removed its own); returns how many. The runs' artifacts
    stay: they are the audit trail's steps."""
    leftovers = [
        *secrets_dir.glob(f"{task_id}*"),
        *runs_dir.glob(f"{task_id}*/{task_id}*.hosts.json"),
    ]
    for path in leftovers:
        remove_path(path)
    return len(leftovers)


def remove_path(path: Path) -> None:
    """Remove a file, or a directory with what is in it (a run's scratch space)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def stop_runs_of(runs_dir: Path, task_id: str) -> None:
    """Kill what earlier runs of `task_id` left running on this host (every process of a
    run names that run's directory, `runs/<task id>[-n]`, on its command line)."""
    _kill_processes_naming(str(runs_dir / task_id))


def _kill_processes_naming(marker: str) -> None:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
                LOG.warning("killed process %s left behind by a stopped run", proc.name)
        except (OSError, ProcessLookupError):
            continue


class PlaybookRunner:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._server = PlaybookServer(settings.state_dir) if settings.ansible_fork_server else None

    def environment(self, connection: dict[str, Any] | None = None) -> dict[str, str]:
        """ansible-playbook's environment for a run on a host reached by `connection`."""
        venv_bin = str(Path(sys.executable).parent)
        env = {
            "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "ANSIBLE_CONFIG": str(self._settings.ansible_dir / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(self._settings.ansible_dir / "roles"),
            "ANSIBLE_LOCAL_TEMP": str(self._settings.state_dir / "tmp"),
            # A run's inventory is always its own JSON file (`inventory()`): the one plugin
            # that reads it is the only one loaded and asked.
            "ANSIBLE_INVENTORY_ENABLED": "yaml",
        }
        if self._settings.ansible_strategy == "mitogen_linear":
            # Mitogen keeps one interpreter per host instead of one per task: a module
            # task costs about a third of what it does with the stock strategy.
            env["ANSIBLE_STRATEGY_PLUGINS"] = str(STRATEGY_PLUGINS)
            # Where it keeps what it found each module imports, for the next runs
            # (strategy_plugins/mitogen_linear.py's MODULE_SCANS).
            env["TROVE_SVC_MODULE_SCANS"] = str(self._settings.state_dir / "module-scans")
            if connection is not None and shares_python(connection):
                # Its interpreter imports Ansible from its disk (SHARED_PYTHON there).
                env["TROVE_SVC_SHARED_PYTHON"] = "1"
        env["ANSIBLE_STRATEGY"] = self._settings.ansible_strategy
        return env

    def run(
        self,
        ident: str,
        playbook: str,
        instance_id: str,
        extravars: dict[str, Any],
        secrets: dict[str, Any],
        on_step: StepCallback | None = None,
        timeout: float | None = None,
        cancel: Callable[[], bool] | None = None,
        *,
        connection: dict[str, Any],
        environment: dict[str, str] | None = None,
        skip_tags: tuple[str, ...] = (),
    ) -> RunResult:
        """Run `playbook` on one instance through a static inventory of that instance.

        `ident` names this run alone (a task run again gets a new one): its data dir, its
        secrets file and its inventory, whose path marks the run's processes for clean-up.
        The roles' phases tagged `skip_tags` are left out (a warm instance's).
        """
        settings = self._settings
        for directory in (settings.runs_dir, settings.secrets_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_dir = settings.runs_dir / ident
        data_dir.mkdir(mode=0o700, exist_ok=True)
        secrets_file = settings.secrets_dir / f"{ident}.yml"
        run_inputs.write_unsafe(secrets_file, secrets)
        # ansible-runner hands the playbook this file (`-e @env/extravars`).
        env_dir = data_dir / "env"
        env_dir.mkdir(mode=0o700, exist_ok=True)
        run_inputs.write_unsafe(
            env_dir / "extravars", {**extravars, "trove_secrets_file": str(secrets_file)}
        )
        # Read from here only: ansible-runner drops a `settings` argument when this file
        # is missing.
        private_files.write(env_dir / "settings", json.dumps(RUNNER_SETTINGS))
        envvars = {**self.environment(connection), **(environment or {})}
        if settings.ansible_strategy == "mitogen_linear":
            connection = through_mitogen(connection)
        inventory_file = data_dir / f"{ident}.hosts.json"
        private_files.write(inventory_file, json.dumps(inventory(instance_id, connection)))
        failure: dict[str, str | None] = {}
        reported: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> bool:
            data = event.get("event_data") or {}
            kind = event.get("event")
            if kind == "playbook_on_task_start" and on_step is not None:
                on_step(_step_name(data))
            elif kind == "runner_on_failed" and not data.get("ignore_errors"):
                failure.setdefault("step", _step_name(data))
                failure.setdefault("message", _failure_message(data))
            elif kind == "runner_on_unreachable":
                failure.setdefault("step", _step_name(data))
                failure.setdefault("message", _failure_message(data) or "host unreachable")
                failure["unreachable"] = "yes"
            elif kind == "playbook_on_stats":
                reported.update(data.get("artifact_data") or {})
            return True

        playbook_path = str(settings.ansible_dir / "playbooks" / playbook)
        launcher = self._server.launcher() if self._server is not None else None
        try:
            runner = ansible_runner.run(
                private_data_dir=str(data_dir),
                ident=ident,
                playbook=playbook_path,
                # The fork server's launcher runs the playbook as ansible-playbook would;
                # given a program of its own, ansible-runner leaves the playbook for the
                # command line.
                binary=str(launcher) if launcher else None,
                cmdline=shlex.quote(playbook_path) if launcher else None,
                inventory=str(inventory_file),
                envvars=envvars,
                event_handler=on_event,
                cancel_callback=cancel or (lambda: False),
                quiet=True,
                skip_tags=",".join(skip_tags) or None,
                rotate_artifacts=1,
                suppress_env_files=True,
                timeout=max(1, int(timeout or settings.task_timeout)),
            )
        finally:
            # A stopped run (timeout, cancel) kills ansible-playbook's process group;
            # mitogen's helper has a session of its own and would outlive it. Its command
            # line names this run's inventory, which no other run shares.
            _kill_processes_naming(str(inventory_file))
            secrets_file.unlink(missing_ok=True)
            inventory_file.unlink(missing_ok=True)
            self._prune()
        return RunResult(
            status=str(runner.status),
            rc=int(runner.rc if runner.rc is not None else -1),
            artifact_dir=str(runner.config.artifact_dir),
            failed_step=failure.get("step"),
            failed_message=failure.get("message"),
            unreachable=bool(failure.get("unreachable")),
            reported=reported,
        )

    def _prune(self) -> None:
        runs = sorted(self._settings.runs_dir.iterdir(), key=lambda p: p.stat().st_mtime)
        for stale in runs[: max(0, len(runs) - self._settings.runs_kept)]:
            shutil.rmtree(stale, ignore_errors=True)
