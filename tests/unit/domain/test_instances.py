"""Instance creates and changes against a real (SQLite) store, the task manager faked: what
a request asks for is checked before anything is recorded, and recorded in its plain form."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trove_svc.bus.messages import RunTask
from trove_svc.domain import catalog, errors
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
