"""The instance flows (create, delete, restart, resize, update_access) from their entry
points, against a real SQLite store, with the runner, the guests and the broker's accounts
stood in for: each ends its task and its instance as the happy path and each step's
failure say, and a run that lost its task lets go without writing an outcome."""

from __future__ import annotations

import ipaddress

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import (
    INSTANCE_PORT,
    OWNER,
    SOURCE_PORT,
    STEPS,
    Effects,
    canceled_meanwhile,
    taken_over,
)
from trove_svc.domain import errors, status, tasks
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Backup, Instance, ServiceStatus, Task
from trove_svc.taskmanager import flows
from trove_svc.taskmanager.runner import RunResult

INSTANCE, SOURCE = "i-1", "s-1"
CANCELED = "Canceled: the instance is being deleted."
FAILED_STEP = STEPS[1]


def _task(task_id: str = "t-1") -> Task:
    return Task.get_by_id(task_id)


def _instance(instance_id: str = INSTANCE) -> Instance:
    return Instance.get_by_id(instance_id)


def _healthy(instance_id: str, effects: Effects) -> None:
    """The guest's last heartbeat said HEALTHY (as the conductor records it)."""
    ServiceStatus.create(
        instance=instance_id,
        operating_status=status.HEALTHY,
        last_received_at=effects.settings.clock(),
    )


def _assert_failed(task: Task, message_start: str, failed_step: str | None = None) -> None:
    assert task.state == TaskState.FAILED, task.message
    assert task.owner is None
    assert task.message.startswith(message_start), task.message
    assert task.failed_step == failed_step


def _assert_faulted(instance: Instance, message_start: str) -> None:
    assert instance.status == status.ERROR
    assert instance.fault_message.startswith(message_start), instance.fault_message
    assert instance.current_step is None


def _assert_let_go(task: Task, state: TaskState, owner: str | None, message: str | None) -> None:
    """The task as the party that took it from the run left it: no outcome written."""
    assert (task.state, task.owner, task.message) == (state, owner, message)
    assert task.finished_at is None or state == TaskState.CANCELED
    assert task.failed_step is None and task.rc is None


# create


def _building(effects: Effects, **changes: object) -> None:
    _, sealed = effects.keys.new_instance_key(INSTANCE)
    rows.instance(status=status.BUILD, provisioned=False, guest_key=sealed, **changes)


def _create(effects: Effects, args: dict[str, object] | None = None) -> None:
    claim = effects.claim("create", INSTANCE, args or {"databases": []})
    flows.create(effects.deps, claim)


def test_create_builds_the_instance_and_turns_it_active_once_its_guest_is_healthy(
    effects: Effects,
) -> None:
    _building(effects)
    _healthy(INSTANCE, effects)
    _create(effects)
    task = _task()
    assert (task.state, task.owner, task.failed_step) == (TaskState.SUCCEEDED, None, None)
    assert task.playbook == "instance_create.yml"
    instance = _instance()
    assert instance.status == status.ACTIVE and instance.provisioned
    assert instance.current_step is None and instance.port is not None
    assert effects.runner.shown == list(STEPS)  # each step shown while it ran
    assert INSTANCE in effects.admin.accounts and INSTANCE in effects.bus.queues


def test_create_leaves_a_built_instance_in_build_until_its_guest_says_healthy(
    effects: Effects,
) -> None:
    _building(effects)
    _create(effects)
    assert _task().state == TaskState.SUCCEEDED
    instance = _instance()
    assert (instance.status, instance.provisioned) == (status.BUILD, True)


@pytest.mark.parametrize(
    "changes",
    [{"status": status.ACTIVE}, {"provisioned": True}],
    ids=["no longer BUILD", "already built"],
)
def test_create_of_an_instance_no_longer_waiting_is_skipped(
    effects: Effects, changes: dict[str, object]
) -> None:
    _building(effects)
    Instance.update(changes).where(Instance.id == INSTANCE).execute()
    _create(effects)
    task = _task()
    assert task.state == TaskState.SKIPPED and task.owner is None
    assert effects.runner.ran == []


def test_create_whose_playbook_fails_tears_down_and_faults_the_instance(effects: Effects) -> None:
    _building(effects)
    effects.runner.fail("instance_create.yml", FAILED_STEP, "could not start server")
    _create(effects)
    why = f"Step '{FAILED_STEP}' failed: could not start server"
    _assert_failed(_task(), why, FAILED_STEP)
    assert _task().rc == 2
    instance = _instance()
    _assert_faulted(instance, why)
    assert not instance.provisioned
    assert effects.runner.shown == list(STEPS[:2])
    # What the failed build started is stopped, its files kept for the logs.
    (teardown,) = [run for run in effects.runner.ran if run.playbook == "instance_delete.yml"]
    assert teardown.extravars["compute_local_purge"] is False


def test_create_that_runs_past_its_time_limit_faults_the_instance(effects: Effects) -> None:
    _building(effects)
    effects.runner.time_out("instance_create.yml")
    _create(effects)
    why = "The task ran past its time limit and was stopped."
    _assert_failed(_task(), why)
    _assert_faulted(_instance(), why)


def test_create_tries_another_port_when_its_port_was_taken_meanwhile(effects: Effects) -> None:
    _building(effects)
    busy = "could not bind IPv4 address: Address already in use"
    effects.runner.fail("instance_create.yml", FAILED_STEP, busy, times=1)
    _healthy(INSTANCE, effects)
    _create(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert _instance().status == status.ACTIVE
    assert effects.runner.playbooks() == ["instance_create.yml", "instance_create.yml"]


def test_create_gives_up_when_every_port_it_tries_is_taken(effects: Effects) -> None:
    _building(effects)
    busy = "could not bind IPv4 address: Address already in use"
    effects.runner.fail("instance_create.yml", FAILED_STEP, busy)
    _create(effects)
    _assert_failed(_task(), f"Step '{FAILED_STEP}' failed: {busy}", FAILED_STEP)
    _assert_faulted(_instance(), f"Step '{FAILED_STEP}' failed: {busy}")
    assert effects.runner.playbooks().count("instance_create.yml") == flows.PORT_ATTEMPTS


def test_create_records_where_its_provider_put_the_instance(effects: Effects) -> None:
    _building(effects)
    place = {"address": "192.0.2.9", "server": "srv-1"}
    effects.runner.script(
        "instance_create.yml",
        RunResult("successful", 0, "/runs/x", reported={"trove_place": place}),
    )
    _create(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert (_instance().host, _instance().server) == ("192.0.2.9", "srv-1")


def test_create_that_failed_after_its_server_was_made_tears_that_server_down(
    effects: Effects,
) -> None:
    _building(effects)
    reported = {"trove_place": {"address": "not an address", "server": "srv-1"}}
    effects.runner.script(
        "instance_create.yml",
        RunResult("failed", 2, "/runs/x", FAILED_STEP, "no", reported=reported),
    )
    _create(effects)
    _assert_failed(_task(), f"Step '{FAILED_STEP}' failed: no", FAILED_STEP)
    # The server is recorded (the teardown and a later delete reach it); the bad address not
    # (it keeps the one it was given).
    assert _instance().server == "srv-1"
    network = ipaddress.ip_network(effects.deps.settings.local_addresses)
    assert ipaddress.ip_address(_instance().host) in network
    assert effects.runner.playbooks() == ["instance_create.yml", "instance_delete.yml"]


def test_create_on_a_host_that_does_not_answer_says_which_host(effects: Effects) -> None:
    _building(effects, provider="openstack", host="192.0.2.7")
    effects.runner.unreachable("instance_create.yml", "ssh: connect to host: No route to host")
    _create(effects)
    why = "Host 192.0.2.7 is unreachable: ssh: connect to host: No route to host"
    _assert_failed(_task(), f"Step '{STEPS[0]}' failed", STEPS[0])
    _assert_faulted(_instance(), why)
    # Nothing was started there: nothing to tear down.
    assert effects.runner.playbooks() == ["instance_create.yml"]


def test_create_restoring_a_backup_that_is_gone_faults_the_instance(effects: Effects) -> None:
    _building(effects)
    _create(effects, {"databases": [], "restore": {"backup_id": "b-gone"}})
    _assert_failed(_task(), "Backup b-gone is gone.")
    _assert_faulted(_instance(), "Backup b-gone is gone.")
    assert effects.runner.ran == []


def test_create_restoring_a_backup_whose_files_are_missing_faults_the_instance(
    effects: Effects,
) -> None:
    rows.instance(id="old", port=None)
    Backup.create(
        id="b-1",
        name="b",
        project_id="p1",
        instance_id="old",
        datastore="postgresql",
        datastore_version="15",
        state="COMPLETED",
        label="20260101-000000F",
        created_at=1.0,
        updated_at=1.0,
    )
    _building(effects)
    _create(effects, {"databases": [], "restore": {"backup_id": "b-1"}})
    assert _task().state == TaskState.FAILED
    assert _instance().status == status.ERROR
    assert _instance().fault_message == _task().message
    assert effects.runner.ran == []


def test_create_of_a_replica_whose_source_is_gone_faults_the_replica(effects: Effects) -> None:
    _building(effects, replica_of_id=SOURCE)
    _create(effects)
    why = "The replica's source could not be prepared: Instance s-1 (the source) is gone."
    _assert_failed(_task(), why)
    _assert_faulted(_instance(), why)
    assert effects.runner.ran == []


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_create_of_a_replica_whose_source_guest_fails_faults_the_replica(
    effects: Effects, failure: str
) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    _building(effects, replica_of_id=SOURCE)
    getattr(effects.bus, failure)("add_replication_account", SOURCE)
    _create(effects)
    why = "The replica's source could not be prepared: The guest agent "
    _assert_failed(_task(), why)
    _assert_faulted(_instance(), why)
    assert effects.runner.ran == []


def test_create_of_a_replica_hands_its_role_the_source_and_a_password(effects: Effects) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT, host="127.0.0.7")
    _building(effects, replica_of_id=SOURCE)
    _create(effects)
    assert _task().state == TaskState.SUCCEEDED
    admitted, run = effects.runner.ran
    assert run.extravars["postgresql_replication"]["port"] == SOURCE_PORT
    assert run.secrets["postgresql_replication_password"]
    assert ("add_replication_account", SOURCE) in effects.bus.asked
    # The source admitted it first (PostgreSQL admits replicas by the address they come
    # from): the source's host rules name the replica's host (this machine: its own
    # address is given at its build), the replica's the source's address and host.
    assert (admitted.playbook, admitted.instance_id) == ("instance_peers.yml", SOURCE)
    assert admitted.extravars["postgresql_replication_peers"] == [
        {"user": "os_repl_i1", "addresses": ["127.0.0.1"]}
    ]
    assert run.extravars["postgresql_replication_peers"] == [
        {"user": "os_repl_s1", "addresses": ["127.0.0.1", "127.0.0.7"]}
    ]


def test_create_of_a_replica_its_source_cannot_admit_faults_the_replica(
    effects: Effects,
) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    _building(effects, replica_of_id=SOURCE)
    effects.runner.fail("instance_peers.yml", instance_id=SOURCE)
    _create(effects)
    why = f"The source {SOURCE} could not admit the replica: Step '{FAILED_STEP}' failed"
    _assert_failed(_task(), why, FAILED_STEP)
    _assert_faulted(_instance(), why)
    assert effects.runner.playbooks() == ["instance_peers.yml"]


def test_create_of_a_replica_leaves_a_busy_replica_to_admit_it_in_its_own_run(
    effects: Effects,
) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    rows.instance(id="r-0", port=SOURCE_PORT + 1, replica_of_id=SOURCE, created_at=-1)
    tasks.record("t-restart", "r-0", "p1", "restart", "u", "req", 0.0)
    _building(effects, replica_of_id=SOURCE)
    _create(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert [(r.playbook, r.instance_id) for r in effects.runner.ran] == [
        ("instance_peers.yml", SOURCE),
        ("instance_create.yml", INSTANCE),
    ]


def test_create_of_a_replica_another_replica_cannot_admit_yet_goes_on(effects: Effects) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    rows.instance(id="r-0", port=SOURCE_PORT + 1, replica_of_id=SOURCE, created_at=-1)
    rows.instance(id="r-building", provisioned=False, replica_of_id=SOURCE, created_at=1)
    _building(effects, replica_of_id=SOURCE)
    effects.runner.fail("instance_peers.yml", instance_id="r-0")
    _create(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert [(r.playbook, r.instance_id) for r in effects.runner.ran] == [
        ("instance_peers.yml", SOURCE),
        ("instance_peers.yml", "r-0"),
        ("instance_create.yml", INSTANCE),
    ]


def test_create_canceled_while_it_ran_lets_go_and_leaves_the_instance(effects: Effects) -> None:
    _building(effects)
    claim = effects.claim("create", INSTANCE, {"databases": []})
    effects.runner.during("instance_create.yml", lambda: canceled_meanwhile(claim))
    flows.create(effects.deps, claim)
    _assert_let_go(_task(), TaskState.CANCELED, None, CANCELED)
    instance = _instance()
    assert (instance.status, instance.provisioned, instance.fault_message) == (
        status.BUILD,
        False,
        None,
    )
    assert "instance_delete.yml" not in effects.runner.playbooks()


def test_create_taken_over_while_it_ran_leaves_the_task_to_the_new_owner(
    effects: Effects,
) -> None:
    _building(effects)
    claim = effects.claim("create", INSTANCE, {"databases": []})
    effects.runner.during("instance_create.yml", lambda: taken_over(claim))
    flows.create(effects.deps, claim)
    _assert_let_go(_task(), TaskState.RUNNING, "tm-2", None)
    assert _instance().status == status.BUILD and not _instance().provisioned


def test_create_whose_broker_account_cannot_be_made_is_given_back_for_a_retry(
    effects: Effects,
) -> None:
    """The broker's failure is no step's: the flow raises, and the task manager gives the
    task back (its message is delivered again)."""
    _building(effects)

    def broker_down(vhost: str, instance_id: str, password: str) -> None:
        raise errors.ServiceUnavailable("The message bus is unavailable.")

    effects.admin.add_guest = broker_down  # type: ignore[method-assign]
    with pytest.raises(errors.ServiceUnavailable):
        _create(effects)
    assert (_task().state, _task().owner) == (TaskState.RUNNING, OWNER)
    assert effects.runner.ran == []


# delete


def _deleting(effects: Effects, **changes: object) -> None:
    rows.instance(status=status.SHUTDOWN, port=INSTANCE_PORT, **changes)
    _healthy(INSTANCE, effects)
    effects.admin.add_guest("", INSTANCE, "pw")
    effects.bus.add_guest_queues(INSTANCE)


def _delete(effects: Effects) -> None:
    flows.delete(effects.deps, effects.claim("delete", INSTANCE))


def test_delete_removes_the_instance_its_account_and_its_queues(effects: Effects) -> None:
    _deleting(effects)
    _delete(effects)
    task = _task()
    assert (task.state, task.owner) == (TaskState.SUCCEEDED, None)
    assert Instance.get_or_none(Instance.id == INSTANCE) is None
    assert ServiceStatus.get_or_none(ServiceStatus.instance == INSTANCE) is None
    assert INSTANCE not in effects.admin.accounts and INSTANCE not in effects.bus.queues
    (teardown,) = effects.runner.ran
    assert teardown.extravars["compute_local_purge"] is True


def test_delete_cancels_the_instance_s_other_tasks_and_waits_for_their_runs(
    effects: Effects,
) -> None:
    _deleting(effects)
    now = effects.settings.clock()
    tasks.record("t-other", INSTANCE, "p1", "backup", "alice", "req-0", now, {})
    assert tasks.claim("t-other", "tm-2", now, 30.0)  # its run is going elsewhere
    _delete(effects)
    other = _task("t-other")
    assert (other.state, other.message) == (TaskState.CANCELED, CANCELED)
    assert _task().state == TaskState.SUCCEEDED
    # Its teardown waited until the other run's lease ran out.
    assert effects.settings.clock() >= now + 30.0


def test_delete_of_a_replica_drops_its_account_on_its_source(effects: Effects) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    _deleting(effects, replica_of_id=SOURCE)
    _delete(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert ("remove_replication_account", SOURCE) in effects.bus.asked


def test_delete_of_a_replica_whose_source_does_not_answer_still_deletes(
    effects: Effects,
) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    _deleting(effects, replica_of_id=SOURCE)
    effects.bus.time_out("remove_replication_account", SOURCE)
    _delete(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert Instance.get_or_none(Instance.id == INSTANCE) is None


def _kept_backup() -> None:
    Backup.create(
        id="b-1",
        name="b",
        project_id="p1",
        instance_id=INSTANCE,
        datastore="postgresql",
        datastore_version="15",
        state="COMPLETED",
        label="20260101-000000F",
        created_at=1.0,
        updated_at=1.0,
    )


def test_delete_has_the_guest_archive_its_logs_for_the_backups_it_leaves(
    effects: Effects,
) -> None:
    _deleting(effects)
    _kept_backup()
    effects.bus.answer("archive_logs", {"archived_until": 1234.0}, INSTANCE)
    _delete(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert Backup.get_by_id("b-1").details["logs_until"] == 1234.0


@pytest.mark.parametrize("failure", ["fail", "time_out"])
def test_delete_whose_guest_cannot_archive_its_logs_still_deletes(
    effects: Effects, failure: str
) -> None:
    _deleting(effects)
    _kept_backup()
    getattr(effects.bus, failure)("archive_logs", INSTANCE)
    _delete(effects)
    assert _task().state == TaskState.SUCCEEDED
    assert Instance.get_or_none(Instance.id == INSTANCE) is None
    assert "logs_until" not in Backup.get_by_id("b-1").details


def test_delete_of_an_instance_already_gone_is_skipped(effects: Effects) -> None:
    _delete(effects)
    assert _task().state == TaskState.SKIPPED
    assert effects.runner.ran == []


def test_delete_whose_teardown_fails_faults_the_instance_and_keeps_it(effects: Effects) -> None:
    _deleting(effects)
    effects.runner.fail("instance_delete.yml", FAILED_STEP, "Directory not empty")
    _delete(effects)
    why = f"Step '{FAILED_STEP}' failed: Directory not empty"
    _assert_failed(_task(), why, FAILED_STEP)
    _assert_faulted(_instance(), f"Delete failed: {why}")
    assert INSTANCE in effects.admin.accounts and INSTANCE in effects.bus.queues


def test_delete_that_runs_past_its_time_limit_faults_the_instance(effects: Effects) -> None:
    _deleting(effects)
    effects.runner.time_out("instance_delete.yml")
    _delete(effects)
    why = "The task ran past its time limit and was stopped."
    _assert_failed(_task(), why)
    _assert_faulted(_instance(), f"Delete failed: {why}")


def test_delete_taken_over_while_it_ran_leaves_the_instance_to_the_new_owner(
    effects: Effects,
) -> None:
    _deleting(effects)
    claim = effects.claim("delete", INSTANCE)
    effects.runner.during("instance_delete.yml", lambda: taken_over(claim))
    flows.delete(effects.deps, claim)
    _assert_let_go(_task(), TaskState.RUNNING, "tm-2", None)
    assert _instance().status == status.SHUTDOWN
    assert INSTANCE in effects.admin.accounts


# restart


def _restart(effects: Effects) -> None:
    flows.restart(effects.deps, effects.claim("restart", INSTANCE))


def test_restart_turns_the_instance_active_with_nothing_waiting(effects: Effects) -> None:
    rows.instance(status=status.REBOOT, restart_pending=True, port=INSTANCE_PORT)
    _healthy(INSTANCE, effects)
    _restart(effects)
    assert (_task().state, _task().playbook) == (TaskState.SUCCEEDED, "instance_restart.yml")
    instance = _instance()
    assert (instance.status, instance.restart_pending, instance.current_step) == (
        status.ACTIVE,
        False,
        None,
    )
    assert effects.runner.shown == list(STEPS)
    assert effects.bus.told == []  # its guest's last word settled it


def test_restart_whose_guest_last_said_the_datastore_was_down_asks_it_for_a_heartbeat(
    effects: Effects,
) -> None:
    rows.instance(status=status.REBOOT, restart_pending=True, port=INSTANCE_PORT)
    ServiceStatus.create(instance=INSTANCE, operating_status=status.SHUTDOWN)  # mid-restart
    _restart(effects)
    assert _task().state == TaskState.SUCCEEDED
    # ACTIVE on the heartbeat asked for now (the conductor's), not on a stale word.
    assert _instance().status == status.REBOOT
    assert effects.bus.told == [("report_now", INSTANCE)]


def test_restart_of_an_instance_no_longer_waiting_is_skipped(effects: Effects) -> None:
    rows.instance(status=status.ACTIVE)
    _restart(effects)
    assert _task().state == TaskState.SKIPPED
    assert effects.runner.ran == []


def test_restart_whose_playbook_fails_faults_the_instance(effects: Effects) -> None:
    rows.instance(status=status.REBOOT, restart_pending=True, port=INSTANCE_PORT)
    effects.runner.fail("instance_restart.yml", FAILED_STEP, "could not start server")
    _restart(effects)
    why = f"Step '{FAILED_STEP}' failed: could not start server"
    _assert_failed(_task(), why, FAILED_STEP)
    _assert_faulted(_instance(), f"Restart failed: {why}")
    assert _instance().restart_pending


def test_restart_that_runs_past_its_time_limit_faults_the_instance(effects: Effects) -> None:
    rows.instance(status=status.REBOOT, port=INSTANCE_PORT)
    effects.runner.time_out("instance_restart.yml")
    _restart(effects)
    why = "The task ran past its time limit and was stopped."
    _assert_failed(_task(), why)
    _assert_faulted(_instance(), f"Restart failed: {why}")


def test_restart_of_a_replica_whose_source_does_not_answer_fences_it(effects: Effects) -> None:
    rows.instance(id=SOURCE, port=SOURCE_PORT)
    rows.instance(status=status.REBOOT, port=INSTANCE_PORT, replica_of_id=SOURCE)
    effects.bus.time_out("add_replication_account", SOURCE)
    _restart(effects)
    assert _task().state == TaskState.SUCCEEDED
    (run,) = effects.runner.ran
    assert run.extravars["postgresql_replication"] == {"fenced": True}


def test_restart_canceled_while_it_ran_lets_go_and_leaves_the_instance(
    effects: Effects,
) -> None:
    rows.instance(status=status.REBOOT, restart_pending=True, port=INSTANCE_PORT)
    _healthy(INSTANCE, effects)
    claim = effects.claim("restart", INSTANCE)
    effects.runner.during("instance_restart.yml", lambda: canceled_meanwhile(claim))
    flows.restart(effects.deps, claim)
    _assert_let_go(_task(), TaskState.CANCELED, None, CANCELED)
    assert (_instance().status, _instance().restart_pending) == (status.REBOOT, True)


# resize and update_access


def _reconfigure(effects: Effects, action: str, args: dict[str, object]) -> None:
    flows.reconfigure(effects.deps, effects.claim(action, INSTANCE, args))


def test_resize_records_the_new_flavor_once_it_is_applied(effects: Effects) -> None:
    rows.instance(status=status.RESIZE, port=INSTANCE_PORT)
    _healthy(INSTANCE, effects)
    _reconfigure(effects, "resize", {"flavor_id": "2"})
    assert _task().state == TaskState.SUCCEEDED
    instance = _instance()
    assert (instance.status, instance.flavor_id, instance.current_step) == (
        status.ACTIVE,
        "2",
        None,
    )
    (run,) = effects.runner.ran
    assert run.playbook == "instance_reconfigure.yml"
    assert run.extravars["postgresql_memory_mb"] == 1024  # the playbook saw the new flavor


def test_resize_that_restarted_the_datastore_leaves_nothing_waiting(effects: Effects) -> None:
    rows.instance(status=status.RESIZE, port=INSTANCE_PORT, restart_pending=True)
    effects.runner.script(
        "instance_reconfigure.yml",
        RunResult("successful", 0, "/runs/x", reported={"postgresql_restarted": True}),
    )
    _reconfigure(effects, "resize", {"flavor_id": "2"})
    assert _task().state == TaskState.SUCCEEDED
    assert not _instance().restart_pending


def test_update_access_records_the_new_rules_once_they_are_applied(effects: Effects) -> None:
    rows.instance(status=status.REBOOT, port=INSTANCE_PORT)
    access = {"is_public": True, "allowed_cidrs": ["10.0.0.0/8"]}
    _reconfigure(effects, "update_access", {"access": access})
    assert _task().state == TaskState.SUCCEEDED
    assert _instance().access == access


def test_resize_of_an_instance_no_longer_waiting_is_skipped(effects: Effects) -> None:
    rows.instance(status=status.ACTIVE)
    _reconfigure(effects, "resize", {"flavor_id": "2"})
    assert _task().state == TaskState.SKIPPED
    assert _instance().flavor_id == "1"


def test_resize_whose_playbook_fails_faults_the_instance_and_keeps_its_flavor(
    effects: Effects,
) -> None:
    rows.instance(status=status.RESIZE, port=INSTANCE_PORT)
    effects.runner.fail("instance_reconfigure.yml", FAILED_STEP, "not enough memory")
    _reconfigure(effects, "resize", {"flavor_id": "2"})
    why = f"Step '{FAILED_STEP}' failed: not enough memory"
    _assert_failed(_task(), why, FAILED_STEP)
    _assert_faulted(_instance(), f"Change failed: {why}")
    assert _instance().flavor_id == "1"


def test_update_access_that_runs_past_its_time_limit_keeps_the_old_rules(
    effects: Effects,
) -> None:
    rows.instance(status=status.REBOOT, port=INSTANCE_PORT)
    effects.runner.time_out("instance_reconfigure.yml")
    _reconfigure(effects, "update_access", {"access": {"is_public": True}})
    why = "The task ran past its time limit and was stopped."
    _assert_failed(_task(), why)
    _assert_faulted(_instance(), f"Change failed: {why}")
    assert _instance().access == {}


def test_resize_canceled_while_it_ran_lets_go_and_keeps_the_flavor(effects: Effects) -> None:
    rows.instance(status=status.RESIZE, port=INSTANCE_PORT)
    claim = effects.claim("resize", INSTANCE, {"flavor_id": "2"})
    effects.runner.during("instance_reconfigure.yml", lambda: canceled_meanwhile(claim))
    flows.reconfigure(effects.deps, claim)
    _assert_let_go(_task(), TaskState.CANCELED, None, CANCELED)
    assert (_instance().status, _instance().flavor_id) == (status.RESIZE, "1")
