"""A failed run's fault quotes the datastore's own log, from where the run began, with
every secret in it redacted; a busy port is recognised wherever it is said. A log its
tenant replaced with a link (or anything but the log) is not read at all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from trove_svc.domain import catalog
from trove_svc.process.settings import Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Flavor, Instance
from trove_svc.taskmanager import faults, provisioning
from trove_svc.taskmanager.runner import RunResult
from trove_wire import datastores

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


def test_the_fault_quotes_the_cause_above_the_servers_shutdown_lines(tmp_path: Path) -> None:
    """A recovery that failed: PostgreSQL says why, then four lines of shutting down."""
    log = tmp_path / "postgresql.log"
    cause = "FATAL:  requested recovery stop point is before consistent recovery point"
    shutdown = [
        "LOG:  startup process (PID 4242) exited with exit code 1",
        "LOG:  terminating any other active server processes",
        "LOG:  shutting down due to startup process failure",
        "LOG:  database system is shut down",
    ]
    said = [f"LOG:  restored log file {n:024X} from archive" for n in range(12)]
    log.write_text("\n".join([*said, cause, *shutdown]) + "\n")

    fault = faults.explain("t-1", FAILED, log, 0)

    assert fault.message.endswith(f"The datastore's log says: {cause}"), fault.message
    assert fault.details.splitlines()[-5:] == [cause, *shutdown]


def test_the_details_keep_the_last_lines_that_fit(tmp_path: Path) -> None:
    log = tmp_path / "postgresql.log"
    log.write_text("".join(f"LOG:  line {n} {'x' * 280}\n" for n in range(30)))

    fault = faults.explain("t-1", FAILED, log, 0)

    assert len(fault.details) <= 4000
    assert fault.details.splitlines()[-1].startswith("LOG:  line 29 ")
    assert fault.message.endswith(f"The datastore's log says: LOG:  line 29 {'x' * 280}")


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


SECRET = "the-service-key-itself"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A state dir with a secret of the control plane's, and one instance's log."""
    (tmp_path / "service.key").write_text(SECRET + "\n")
    (tmp_path / "instances" / "i-1" / "postgresql").mkdir(parents=True)
    return tmp_path


@pytest.mark.parametrize("target", ["service.key", "/proc/self/environ", "/dev/zero"])
def test_a_log_the_tenant_replaced_with_a_link_is_not_read(state_dir: Path, target: str) -> None:
    log = state_dir / "instances" / "i-1" / "postgresql" / "postgresql.log"
    log.symlink_to(state_dir / target)
    since = faults.log_size(log)

    fault = faults.explain("t-1", FAILED, log, since)

    assert since == 0
    assert fault.message == (
        "Step 'postgresql : Start PostgreSQL' failed: pg_ctl: could not start server"
    )
    assert fault.details == "Task t-1 (failed, rc 2)."


def test_a_datastore_directory_replaced_with_a_link_is_not_followed(state_dir: Path) -> None:
    elsewhere = state_dir / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "postgresql.log").write_text(SECRET + "\n")
    instance_dir = state_dir / "instances" / "i-1"
    os.rmdir(instance_dir / "postgresql")
    (instance_dir / "postgresql").symlink_to(elsewhere)

    fault = faults.explain("t-1", FAILED, instance_dir / "postgresql" / "postgresql.log", 0)

    assert SECRET not in fault.message + fault.details


def test_only_the_tail_of_a_huge_log_is_read(state_dir: Path) -> None:
    log = state_dir / "instances" / "i-1" / "postgresql" / "postgresql.log"
    with log.open("wb") as handle:
        handle.seek(4 * 1024**3)  # sparse: 4 GiB of NUL bytes on paper first
        handle.write(b"\nFATAL:  the last words\n")

    fault = faults.explain("t-1", FAILED, log, 0)

    assert fault.message.endswith("The datastore's log says: FATAL:  the last words")


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[list[Instance]]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults(catalog.host_datastores())
    yield [
        Instance.create(
            id=f"i-{version.datastore.name}",
            name=version.datastore.name,
            project_id="p",
            datastore_version=version,
            flavor=Flavor.get_by_id("1"),
            volume_size=1,
            status="ACTIVE",
            port=port,
            created_at=0,
            updated_at=0,
        )
        for port, version in enumerate(DatastoreVersion.select(), start=21000)
    ]
    database.close()


def test_every_datastores_log_is_read_with_no_link_from_the_instance_directory_down(
    instances: list[Instance], tmp_path: Path
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    assert sorted(i.datastore_version.datastore.name for i in instances) == sorted(
        datastores.REGISTRY
    )
    for instance in instances:
        log = provisioning.datastore_log(settings, instance)
        assert log is not None
        log.parent.mkdir(parents=True)
        log.write_text("FATAL:  its own words\n")
        assert "its own words" in faults.explain("t-1", FAILED, log, 0).message
        # The instance's directory itself replaced by a link (to what it held).
        instance_dir = settings.instances_dir / instance.id
        instance_dir.rename(tmp_path / instance.id)
        instance_dir.symlink_to(tmp_path / instance.id)
        assert "its own words" not in faults.explain("t-1", FAILED, log, 0).message
