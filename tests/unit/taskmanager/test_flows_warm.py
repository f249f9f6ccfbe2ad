"""The warm pool's flows from their entry points, against a real SQLite store with the
runner, guests and broker accounts stood in for: a warm build runs only the phases that
need no tenant and holds no secret, and a create that claimed a warm instance runs only
what makes it the tenant's, its broker account made then."""

from __future__ import annotations

import os
import threading
from typing import Any

import pytest

from tests import rows
from tests.unit.taskmanager.fakes import STEPS, Effects
from trove_svc.domain import status, warm_pool
from trove_svc.domain.tasks import TaskState
from trove_svc.store.models import Instance, ServiceStatus, Task
from trove_svc.taskmanager import flows

INSTANCE = "i-1"
SLOT = "postgresql:15:1#0"


def _warming() -> None:
    rows.instance(
        status=status.BUILD,
        provisioned=False,
        project_id=warm_pool.WARM_PROJECT,
        warm_slot=SLOT,
    )


def _warm(effects: Effects) -> None:
    flows.warm(effects.deps, effects.claim("warm", INSTANCE, {"databases": []}))


def test_a_warm_build_runs_no_tenant_phase_and_waits_warm_with_no_secret(
    effects: Effects,
) -> None:
    _warming()
    _warm(effects)
    task = Task.get_by_id("t-1")
    assert (task.state, task.failed_step) == (TaskState.SUCCEEDED, None)
    (run,) = effects.runner.ran
    assert run.playbook == "instance_create.yml"
    assert run.skip_tags == flows.TENANT_PHASES
    assert run.secrets == {}
    instance = Instance.get_by_id(INSTANCE)
    assert (instance.status, instance.provisioned, instance.warm_slot) == (
        status.WARM,
        False,
        SLOT,
    )
    assert instance.port is not None and instance.current_step is None
    # No broker account or queue until a tenant's create claims it.
    assert effects.admin.accounts == {} and not effects.bus.queues


def test_a_warm_build_that_fails_leaves_it_in_error_for_its_pool_to_replace(
    effects: Effects,
) -> None:
    _warming()
    effects.runner.fail("instance_create.yml", STEPS[1], "initdb failed")
    _warm(effects)
    assert Task.get_by_id("t-1").failed_step == STEPS[1]
    instance = Instance.get_by_id(INSTANCE)
    assert instance.status == status.ERROR
    assert instance.fault_message.startswith(f"Step '{STEPS[1]}' failed: initdb failed")


def test_a_warm_build_of_an_instance_claimed_or_gone_meanwhile_is_skipped(
    effects: Effects,
) -> None:
    _warming()
    Instance.update(warm_slot=None).where(Instance.id == INSTANCE).execute()
    _warm(effects)
    assert Task.get_by_id("t-1").state == TaskState.SKIPPED
    assert effects.runner.ran == []


def test_a_claimed_create_runs_only_the_tenant_phases_with_a_new_account_and_key(
    effects: Effects,
) -> None:
    _, sealed = effects.keys.new_instance_key(INSTANCE)
    rows.instance(status=status.BUILD, provisioned=False, guest_key=sealed, port=24999)
    ServiceStatus.create(
        instance=INSTANCE,
        operating_status=status.HEALTHY,
        last_received_at=effects.settings.clock(),
    )
    claim = effects.claim("create", INSTANCE, {"databases": [], "warm": True})
    flows.create(effects.deps, claim)
    task = Task.get_by_id("t-1")
    assert task.state == TaskState.SUCCEEDED, task.message
    (run,) = effects.runner.ran
    assert run.skip_tags == flows.WARM_PHASES
    assert run.secrets["guest_agent_transport_url"] and run.secrets["guest_agent_key"]
    assert INSTANCE in effects.admin.accounts and INSTANCE in effects.bus.queues
    instance = Instance.get_by_id(INSTANCE)
    assert (instance.status, instance.provisioned, instance.port) == (status.ACTIVE, True, 24999)


def test_a_claimed_create_whose_run_fails_names_the_step_and_faults_the_instance(
    effects: Effects,
) -> None:
    _, sealed = effects.keys.new_instance_key(INSTANCE)
    rows.instance(status=status.BUILD, provisioned=False, guest_key=sealed)
    effects.runner.fail("instance_create.yml", STEPS[2], "could not start server")
    flows.create(effects.deps, effects.claim("create", INSTANCE, {"databases": [], "warm": True}))
    assert Task.get_by_id("t-1").failed_step == STEPS[2]
    instance = Instance.get_by_id(INSTANCE)
    assert instance.status == status.ERROR
    assert instance.fault_message.startswith(f"Step '{STEPS[2]}' failed: could not start server")


def test_a_warm_build_runs_at_a_lower_cpu_priority_than_the_creates_it_serves(
    effects: Effects, monkeypatch: pytest.MonkeyPatch
) -> None:
    _warming()
    niceness: list[int] = []
    run = effects.runner.run

    def noting_niceness(*args: Any, **kwargs: Any) -> Any:
        niceness.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return run(*args, **kwargs)

    monkeypatch.setattr(effects.runner, "run", noting_niceness)
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    _warm(effects)
    assert niceness == [max(own, flows.WARM_BUILD_NICENESS)]
    # The flow's own thread (a task manager's worker) keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
