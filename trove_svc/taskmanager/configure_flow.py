"""The flow that puts an instance's configuration group in effect: the role writes the
values to the datastore's own file, the guest applies the dynamic ones at once, and the
instance shows RESTART_REQUIRED while values wait for a restart."""

from __future__ import annotations

import logging

from trove_svc import configurations, errors, parameter_rules, tasks
from trove_svc.store.models import Instance
from trove_svc.taskmanager.deps import Claim, FlowDeps, guest_context
from trove_svc.taskmanager.flows import run_playbook
from trove_wire import contract, datastores

LOG = logging.getLogger(__name__)


def _changed(before: dict[str, str], wanted: dict[str, str]) -> set[str]:
    return {name for name in set(before) | set(wanted) if before.get(name) != wanted.get(name)}


def _summary(applied: set[str], waiting: set[str]) -> str:
    parts = [f"applied {', '.join(sorted(applied))}" if applied else "nothing to apply now"]
    if waiting:
        parts.append(f"a restart puts {', '.join(sorted(waiting))} in effect")
    return "; ".join(parts)


def configure(deps: FlowDeps, claim: Claim) -> None:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    now = deps.settings.clock()
    if (
        instance is None
        or not instance.provisioned
        or instance.status not in configurations.RUNNING
    ):
        tasks.skip(claim.task.id, claim.owner, now, "the instance is not running; its next "
                   "start or resize writes the group's values")  # fmt: skip
        return
    version = instance.datastore_version
    spec = datastores.get(version.datastore.name)
    rules = parameter_rules.of_version(version)
    wanted = configurations.engine_values(instance)
    before: dict[str, str] = instance.configuration_values or {}
    result = run_playbook(deps, claim, "instance_configure.yml", instance)
    if not result.ok or not claim.still_ours():
        if claim.still_ours():
            why = "Writing the values failed: " + result.describe_failure()
            tasks.finish(claim.task.id, claim.owner, deps.settings.clock(), ok=False,
                         rc=result.rc, artifact_dir=result.artifact_dir, message=why)  # fmt: skip
        else:
            tasks.let_go(claim.task.id, claim.owner)
        return
    changed = _changed(before, wanted)
    dynamic = {n: wanted[n] for n in changed if n in wanted and not rules[n].restart_required}
    waiting = {n for n in changed if n in rules and rules[n].restart_required}
    if not spec.reload_rereads_file:
        waiting |= {n for n in changed if n not in wanted}  # removed: back at the next start
    failure = None
    try:
        request = contract.ApplyConfiguration(dynamic)
        deps.bus.call_guest(instance.id, request, guest_context(), deps.settings.call_timeout)
    except errors.TroveSvcError as exc:
        failure = f"The values are written, but applying them failed: {exc.message}"
        waiting |= set(dynamic)
        dynamic = {}
    Instance.update(
        configuration_values=wanted,
        restart_pending=bool(instance.restart_pending or waiting),
        updated_at=deps.settings.clock(),
    ).where(Instance.id == instance.id).execute()
    LOG.info("instance %s configured: %s", instance.id, _summary(set(dynamic), waiting))
    tasks.finish(claim.task.id, claim.owner, deps.settings.clock(), ok=failure is None,
                 rc=result.rc, artifact_dir=result.artifact_dir,
                 message=failure or _summary(set(dynamic), waiting))  # fmt: skip
