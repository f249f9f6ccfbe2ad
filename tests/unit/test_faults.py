"""A failed run's fault quotes the datastore's own log, from where the run began, with
every secret in it redacted; a busy port is recognised wherever it is said."""

from __future__ import annotations

from pathlib import Path

import pytest

from trove_svc.taskmanager import faults
from trove_svc.taskmanager.runner import RunResult

FAILED = RunResult(
    status="failed",
    rc=2,
    artifact_dir="",
    failed_step="postgresql : Start PostgreSQL",
    failed_message="pg_ctl: could not start server",
)


def test_the_fault_quotes_the_log_lines_the_run_wrote(tmp_path: Path) -> None:
    log = tmp_path / "postgresql.log"
    log.write_text("LOG:  an earlier run's line\n")
    since = faults.log_size(log)
    with log.open("a") as handle:
        handle.write("LOG:  starting PostgreSQL 15\n\n")
        handle.write('FATAL:  invalid value for parameter "work_mem": "lots"\n')

    fault = faults.explain("t-1", FAILED, log, since)

    assert fault.message == (
        "Step 'postgresql : Start PostgreSQL' failed: pg_ctl: could not start server"
        ' The datastore\'s log says: FATAL:  invalid value for parameter "work_mem": "lots"'
    )
    assert "earlier run" not in fault.details
    assert fault.details.splitlines()[1:] == [
        "LOG:  starting PostgreSQL 15",
        'FATAL:  invalid value for parameter "work_mem": "lots"',
    ]
    assert not fault.port_busy


@pytest.mark.parametrize(
    "line",
    [
        "LOG:  statement: CREATE ROLE \"app\" LOGIN PASSWORD 'Hunter-2-secret-pw'",
        "LOG:  statement: ALTER ROLE app PASSWORD 'Hunter-2-secret-pw'",
        "Query CREATE USER 'app'@'%' IDENTIFIED BY 'Hunter-2-secret-pw'",
        "Query SET PASSWORD FOR 'app'@'%' = PASSWORD('Hunter-2-secret-pw')",
        "connecting to amqp://trove:Hunter-2-secret-pw@127.0.0.1:5672/",
        'module said: {"password": "Hunter-2-secret-pw"}',
    ],
)
def test_secrets_in_the_log_are_redacted(tmp_path: Path, line: str) -> None:
    log = tmp_path / "datastore.log"
    log.write_text(line + "\n")

    fault = faults.explain("t-1", FAILED, log, 0)

    assert "Hunter-2-secret-pw" not in fault.message + fault.details
    assert "********" in fault.message


def test_a_busy_port_is_recognised_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "mariadb.log"
    log.write_text("[ERROR] Can't start server: Bind on TCP/IP port: Address already in use\n")
    assert faults.explain("t-1", FAILED, log, 0).port_busy


def test_without_a_log_the_fault_is_the_failed_step() -> None:
    fault = faults.explain("t-1", RunResult(status="timeout", rc=-1, artifact_dir=""), None, 0)
    assert fault.message == "The task ran past its time limit and was stopped."
    assert fault.details == "Task t-1 (timeout, rc -1)."
