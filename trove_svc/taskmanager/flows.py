"""One flow per operation: each is one Ansible run plus the records around it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from trove_svc import status
from trove_svc.bus.client import Bus, guest_queue
from trove_svc.bus.messages import (
    InstanceCreate,
    InstanceDelete,
    InstanceReconfigure,
    InstanceRestart,
)
from trove_svc.settings import Settings
from trove_svc.store.models import Flavor, Instance, ServiceStatus, Task, database_proxy
from trove_svc.taskmanager import ports, provisioning
from trove_svc.taskmanager.runner import PlaybookRunner, RunResult, StepCallback

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowDeps:
    settings: Settings
    runner: PlaybookRunner
    bus: Bus


def _start_task(deps: FlowDeps, task_id: str, playbook: str) -> None:
    Task.update(state="RUNNING", started_at=deps.settings.clock(), playbook=playbook).where(
        Task.id == task_id
    ).execute()


def _finish_task(deps: FlowDeps, task_id: str, result: RunResult) -> None:
    Task.update(
        state="SUCCEEDED" if result.ok else "FAILED",
        rc=result.rc,
        finished_at=deps.settings.clock(),
        artifact_dir=result.artifact_dir,
        failed_step=result.failed_step,
        message=None if result.ok else result.describe_failure(),
    ).where(Task.id == task_id).execute()


def _skip_task(deps: FlowDeps, task_id: str, why: str) -> None:
    LOG.info("task %s skipped: %s", task_id, why)
    Task.update(state="SKIPPED", message=why, finished_at=deps.settings.clock()).where(
        Task.id == task_id
    ).execute()


def _details(task_id: str, result: RunResult) -> str:
    return f"Task {task_id} ({result.status}, rc {result.rc})."


def _show_step(instance_id: str) -> StepCallback:
    def on_step(step: str) -> None:
        Instance.update(current_step=step).where(Instance.id == instance_id).execute()

    return on_step


def instance_create(deps: FlowDeps, message: InstanceCreate) -> None:
    instance = Instance.get_or_none(Instance.id == message.instance_id)
    if instance is None or instance.status != status.BUILD or instance.provisioned:
        _skip_task(deps, message.task_id, "the instance is no longer waiting to be built")
        return
    _start_task(deps, message.task_id, "instance_create.yml")
    ports.allocate(deps.settings, instance.id)
    instance = Instance.get_by_id(instance.id)
    admin_password = deps.settings.new_secret()
    result = deps.runner.run(
        ident=message.task_id,
        playbook="instance_create.yml",
        instance_id=instance.id,
        extravars=provisioning.create_vars(deps.settings, instance, message.databases),
        secrets=provisioning.create_secrets(deps.settings, instance, admin_password, message.users),
        on_step=_show_step(instance.id),
    )
    _finish_task(deps, message.task_id, result)
    LOG.info("create of %s: %s", instance.id, "done" if result.ok else result.describe_failure())
    now = deps.settings.clock()
    if result.ok:
        Instance.update(provisioned=True, current_step=None, updated_at=now).where(
            Instance.id == instance.id
        ).execute()
        status.promote_if_ready(instance.id)
        return
    # Stop what the failed build started before saying ERROR: once a client sees ERROR,
    # nothing of the instance runs. Its files stay, for the logs, until it is deleted.
    _tear_down(deps, instance, f"{message.task_id}-cleanup", purge=False)
    status.record_fault(
        instance.id,
        deps.settings.clock(),
        result.describe_failure(),
        _details(message.task_id, result),
    )


def _tear_down(deps: FlowDeps, instance: Instance, ident: str, purge: bool) -> RunResult:
    """Stop everything the instance runs; with `purge`, remove its files and account too."""
    result = deps.runner.run(
        ident=ident,
        playbook="instance_delete.yml",
        instance_id=instance.id,
        extravars={"compute_local_purge": purge},
        secrets={},
        timeout=deps.settings.cleanup_timeout,
    )
    if not result.ok:
        LOG.error("tear-down of %s failed: %s", instance.id, result.describe_failure())
    return result


def instance_delete(deps: FlowDeps, message: InstanceDelete) -> None:
    instance = Instance.get_or_none(Instance.id == message.instance_id)
    if instance is None:
        _skip_task(deps, message.task_id, "the instance is already gone")
        return
    _start_task(deps, message.task_id, "instance_delete.yml")
    result = _tear_down(deps, instance, message.task_id, purge=True)
    _finish_task(deps, message.task_id, result)
    if not result.ok:
        status.record_fault(
            instance.id,
            deps.settings.clock(),
            "Delete failed: " + result.describe_failure(),
            _details(message.task_id, result),
        )
        return
    deps.bus.delete_queue(guest_queue(instance.id))
    with database_proxy.atomic():
        ServiceStatus.delete().where(ServiceStatus.instance == instance.id).execute()
        Instance.delete().where(Instance.id == instance.id).execute()
    LOG.info("instance %s deleted", instance.id)


def _run_on_running_instance(
    deps: FlowDeps,
    task_id: str,
    instance: Instance,
    playbook: str,
    failure_prefix: str,
    changes: dict[str, Any] | None = None,
) -> bool:
    """Run a playbook on a built instance; it settles to ACTIVE on the next healthy beat.

    The instance's variables come from the inventory plugin (the store); `changes` are
    the ones the run applies before the store records them.
    """
    _start_task(deps, task_id, playbook)
    Instance.update(provisioned=False).where(Instance.id == instance.id).execute()
    result = deps.runner.run(
        ident=task_id,
        playbook=playbook,
        instance_id=instance.id,
        extravars=changes or {},
        secrets={},
        on_step=_show_step(instance.id),
    )
    _finish_task(deps, task_id, result)
    now = deps.settings.clock()
    if result.ok:
        Instance.update(provisioned=True, current_step=None, updated_at=now).where(
            Instance.id == instance.id
        ).execute()
        return True
    status.record_fault(
        instance.id,
        now,
        f"{failure_prefix}: {result.describe_failure()}",
        _details(task_id, result),
        provisioned=True,
    )
    return False


def instance_restart(deps: FlowDeps, message: InstanceRestart) -> None:
    instance = Instance.get_or_none(Instance.id == message.instance_id)
    if instance is None or instance.status != status.REBOOT:
        _skip_task(deps, message.task_id, "the instance is no longer waiting to restart")
        return
    if _run_on_running_instance(
        deps, message.task_id, instance, "instance_restart.yml", "Restart failed"
    ):
        status.promote_if_ready(instance.id)


def instance_reconfigure(deps: FlowDeps, message: InstanceReconfigure) -> None:
    instance = Instance.get_or_none(Instance.id == message.instance_id)
    if instance is None or instance.status not in (status.RESIZE, status.REBOOT):
        _skip_task(deps, message.task_id, "the instance is no longer waiting for this change")
        return
    # The playbook sees the instance as it will be; the record follows once it is applied.
    if message.flavor_id is not None:
        instance.flavor = Flavor.get_by_id(message.flavor_id)
    if message.access is not None:
        instance.access = message.access
    changes = provisioning.instance_vars(deps.settings, instance)
    if _run_on_running_instance(
        deps, message.task_id, instance, "instance_reconfigure.yml", "Change failed", changes
    ):
        Instance.update(flavor=instance.flavor_id, access=instance.access).where(
            Instance.id == instance.id
        ).execute()
        status.promote_if_ready(instance.id)
