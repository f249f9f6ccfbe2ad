"""One Ansible run for a claimed task: counted on the task, stopped as soon as the claim
stops holding, and telling the placement whether a pool host answered."""

from __future__ import annotations

from typing import Any

from trove_svc import compute
from trove_svc.compute import placement
from trove_svc.domain import tasks
from trove_svc.store.models import Instance, Task
from trove_svc.taskmanager import provisioning
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.runner import RunResult, StepCallback


def _show_step(instance_id: str) -> StepCallback:
    def on_step(step: str) -> None:
        Instance.update(current_step=step).where(Instance.id == instance_id).execute()

    return on_step


def run_playbook(
    deps: FlowDeps,
    claim: Claim,
    playbook: str,
    instance: Instance,
    extravars: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    suffix: str = "",
    timeout: float | None = None,
    show_steps: bool = False,
    skip_tags: tuple[str, ...] = (),
) -> RunResult:
    """Run `playbook` on `instance` for the claimed task, without the roles' phases tagged
    `skip_tags`; with `show_steps`, the instance shows the Ansible task being run as its
    current step."""
    task = claim.task
    runs = Task.select(Task.runs).where(Task.id == task.id).scalar() or 0
    tasks.start_run(task.id, claim.owner, playbook)
    ident = task.id if runs == 0 and not suffix else f"{task.id}-{suffix or runs + 1}"
    place = compute.place_of(deps.settings, instance)
    result = deps.runner.run(
        ident=ident,
        playbook=playbook,
        instance_id=instance.id,
        extravars={**provisioning.instance_vars(deps.settings, instance), **(extravars or {})},
        secrets=secrets or {},
        on_step=_show_step(instance.id) if show_steps else None,
        timeout=timeout,
        cancel=claim.gone,
        connection=place.connection,
        environment=place.environment,
        skip_tags=skip_tags,
    )
    _note_host(deps, instance, result)
    return result


def _note_host(deps: FlowDeps, instance: Instance, result: RunResult) -> None:
    """A pool host that did not answer is skipped by placements until it answers again."""
    if instance.provider != "ssh" or not instance.server:
        return
    if result.unreachable:
        placement.mark_unreachable(
            instance.server, deps.settings.clock(), result.failed_message or "no answer"
        )
    elif result.ok:
        placement.mark_reachable(instance.server)
