from __future__ import annotations

from trove_svc.taskmanager.runner import RunResult


def test_failure_names_the_step_and_its_message() -> None:
    result = RunResult(
        status="failed",
        rc=2,
        artifact_dir="/x",
        failed_step="postgresql : Start PostgreSQL",
        failed_message="port in use",
    )
    assert not result.ok
    assert result.describe_failure() == "Step 'postgresql : Start PostgreSQL' failed: port in use"


def test_timeout_says_so() -> None:
    result = RunResult(status="timeout", rc=254, artifact_dir="/x")
    assert "time limit" in result.describe_failure()


def test_success_needs_status_and_rc() -> None:
    assert RunResult(status="successful", rc=0, artifact_dir="/x").ok
    assert not RunResult(status="successful", rc=1, artifact_dir="/x").ok
