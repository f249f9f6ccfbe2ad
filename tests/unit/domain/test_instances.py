"""Instance creates and changes against a real (SQLite) store, the task manager faked: what
a request asks for is checked before anything is recorded, and recorded in its plain form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trove_svc.bus.messages import RunTask
from trove_svc.domain import catalog, errors, tasks
from trove_svc.domain.instances import InstanceService
from trove_svc.process.settings import Settings
from trove_svc.security.caller import Caller
from trove_svc.security.keys import ServiceKeys
from trove_svc.store.db import open_store
from trove_svc.store.models import Instance, Task
from trove_wire.envelope import Context
from trove_wire.seal import new_key

CALLER = Caller("p1", Context(project="p1", user="alice"))


class RecordingTaskManager:
    def __init__(self) -> None:
        self.sent: list[RunTask] = []

    def run_task(self, message: RunTask, context: Context) -> None:
        self.sent.append(message)


@pytest.fixture
def taskmanager() -> RecordingTaskManager:
    return RecordingTaskManager()


@pytest.fixture
def service(tmp_path: Path, taskmanager: RecordingTaskManager) -> Iterator[InstanceService]:
    settings = Settings(state_dir=tmp_path)
    database = open_store(settings.effective_database_url)
    catalog.ensure_defaults([catalog.HostDatastore("postgresql", "15", "/usr/bin")])
    yield InstanceService(settings, taskmanager, ServiceKeys(new_key()))  # type: ignore[arg-type]
    database.close()


def _create(**changes: Any) -> dict[str, Any]:
    return {"instance": {"name": "x", "flavorRef": "1", "volume": {"size": 1}, **changes}}


def test_allowed_cidrs_are_stored_as_plain_networks(
    service: InstanceService, taskmanager: RecordingTaskManager
) -> None:
    cidrs = ["10.1.2.3/24", "2001:DB8::1/32", "192.0.2.7", "10.0.0.0/255.0.0.0"]
    made = service.create(CALLER, _create(access={"allowed_cidrs": cidrs}))
    stored = Instance.get_by_id(made.id).access["allowed_cidrs"]
    assert stored == ["10.1.2.0/24", "2001:db8::/32", "192.0.2.7/32", "10.0.0.0/8"]
    assert len(taskmanager.sent) == 1


@pytest.mark.parametrize(
    ("cidr", "words"),
    [
        ("fe80::1%eth0/128", "must not hold a zone id"),
        ("fe80::%{{ lookup('pipe', 'id') }}/128", "must not hold a zone id"),
        ("fe80::1%0", "must not hold a zone id"),
        ("10.0.0.0/8 # all", "is not a CIDR"),
        ("10.0.0.0/33", "is not a CIDR"),
        ("example.org", "is not a CIDR"),
        (167772160, "is not a CIDR"),  # a number is an address to ipaddress, not a CIDR
    ],
)
def test_anything_but_a_plain_network_is_refused_naming_the_field(
    service: InstanceService, taskmanager: RecordingTaskManager, cidr: object, words: str
) -> None:
    with pytest.raises(errors.BadRequest) as refused:
        service.create(CALLER, _create(access={"allowed_cidrs": ["192.0.2.0/24", cidr]}))
    assert refused.value.message.startswith(f"instance.access.allowed_cidrs.1: {words}")
    assert str(cidr) not in refused.value.message
    assert Instance.select().count() == 0 and Task.select().count() == 0
    assert taskmanager.sent == []


def test_a_zone_id_is_refused_on_update_too(service: InstanceService) -> None:
    made = service.create(CALLER, _create())
    Instance.update(status="ACTIVE").where(Instance.id == made.id).execute()
    with pytest.raises(errors.BadRequest, match="zone id"):
        service.update_access(CALLER, made.id, {"allowed_cidrs": ["fe80::1%lo/128"]})
    assert Instance.get_by_id(made.id).access["allowed_cidrs"] == []


def test_a_users_host_is_checked_at_create_as_it_is_later(
    service: InstanceService, taskmanager: RecordingTaskManager
) -> None:
    users = [{"name": "shop", "password": "Long-enough-pw-1", "host": "10.0.0.1'@'%"}]
    with pytest.raises(errors.BadRequest, match="A user's host is not valid"):
        service.create(CALLER, _create(users=users))
    assert Instance.select().count() == 0 and taskmanager.sent == []
    users[0]["host"] = "10.0.0.0/255.0.0.0"
    service.create(CALLER, _create(users=users))
    assert len(taskmanager.sent) == 1


def _active_with_open(service: InstanceService, action: str) -> str:
    """A built, ACTIVE instance with an open task of `action`."""
    made = service.create(CALLER, _create())
    Instance.update(status="ACTIVE", provisioned=True).where(Instance.id == made.id).execute()
    Task.update(state="SUCCEEDED").where(Task.instance_id == made.id).execute()
    tasks.record("t-open", made.id, "p1", action, "alice", "req-0", 1.0)
    return str(made.id)


@pytest.mark.parametrize("ahead", ["configure", "configure_set"])
def test_a_restart_during_a_configuration_change_is_taken_to_run_after_it(
    service: InstanceService, taskmanager: RecordingTaskManager, ahead: str
) -> None:
    instance_id = _active_with_open(service, ahead)
    service.restart(CALLER, instance_id)
    assert Instance.get_by_id(instance_id).status == "REBOOT"
    restart = Task.get((Task.instance_id == instance_id) & (Task.action == "restart"))
    assert taskmanager.sent[-1].task_id == restart.id
    assert [t.id for t in tasks.ahead_of(restart)] == ["t-open"]


@pytest.mark.parametrize(
    ("ahead", "asked"),
    [
        ("configure", lambda s, i: s.update_access(CALLER, i, {"is_public": True})),
        ("backup", lambda s, i: s.restart(CALLER, i)),
        ("restart", lambda s, i: s.restart(CALLER, i)),
    ],
    ids=["access during a configuration change", "restart during a backup", "restart twice"],
)
def test_other_operations_on_a_busy_instance_are_refused(
    service: InstanceService, ahead: str, asked: Any
) -> None:
    instance_id = _active_with_open(service, ahead)
    with pytest.raises(errors.Conflict, match="busy with another task"):
        asked(service, instance_id)
    assert Instance.get_by_id(instance_id).status == "ACTIVE"


def test_a_rejoin_asked_for_by_hand_starts_one_on_a_replica_only(
    service: InstanceService, taskmanager: RecordingTaskManager
) -> None:
    made = service.create(CALLER, _create())
    old = service.create(CALLER, _create(name="old"))
    Instance.update(status="ACTIVE", provisioned=True).execute()
    Task.update(state="SUCCEEDED").execute()
    with pytest.raises(errors.BadRequest, match="is not a replica"):
        service.rejoin_replica_source(CALLER, made.id)
    Instance.update(replica_of_id=made.id, status="ERROR").where(Instance.id == old.id).execute()
    task_id = service.rejoin_replica_source(CALLER, old.id)
    assert Instance.get_by_id(old.id).status == "REJOIN"
    assert (Task.get_by_id(task_id).action, taskmanager.sent[-1].task_id) == ("rejoin", task_id)


def test_a_replica_of_an_instance_on_another_provider_is_refused(
    service: InstanceService, tmp_path: Path
) -> None:
    """A source on this machine, a deployment now making instances on a pool: its replica
    would be given 127.0.0.1 (the source's address here) to copy from, on a pool host."""
    pool = tmp_path / "pool.yml"
    pool.write_text("all:\n  hosts:\n    db1: {ansible_host: 192.0.2.5}\n")
    source = service.create(CALLER, _create())
    Instance.update(status="ACTIVE", provisioned=True).where(Instance.id == source.id).execute()
    Task.update(state=tasks.TaskState.SUCCEEDED).execute()
    on_a_pool = InstanceService(
        Settings(state_dir=tmp_path, compute_provider="ssh", host_pool=str(pool)),
        RecordingTaskManager(),  # type: ignore[arg-type]
        ServiceKeys(new_key()),
    )
    with pytest.raises(errors.BadRequest, match="a replica is made where its source is"):
        on_a_pool.create(CALLER, _create(replica_of=source.id))
    assert Instance.select().count() == 1
