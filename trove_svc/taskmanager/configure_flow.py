"""The flows that put configuration groups in effect: the role writes the values to the
datastore's own file, the guest applies the dynamic ones at once, and the instance shows
RESTART_REQUIRED while values wait for a restart.

A change of the settings a replica must hold at least as high as its source
(`trove_svc.domain.hot_standby`) goes to a replication set as one task, member by member in the
order the engine requires, each restarted so the values are in effect before the next
member gets them."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trove_datastores.base import Parameter
from trove_svc.domain import configurations, errors, parameter_rules, tasks
from trove_svc.domain.status import REBOOT
from trove_svc.store.models import Instance
from trove_svc.taskmanager import replica_sources
from trove_svc.taskmanager.deps import Claim, FlowDeps, guest_context
from trove_svc.taskmanager.engine import Flow, FlowState, Lost, Outcome, Skip, Step, StepFailed
from trove_svc.taskmanager.engine import run as run_flow
from trove_svc.taskmanager.runner import RunResult
from trove_svc.taskmanager.runs import run_playbook
from trove_wire import contract, datastores

LOG = logging.getLogger(__name__)

NOT_RUNNING = "the instance is not running; its next start or resize writes the group's values"


def _changed(before: dict[str, str], wanted: dict[str, str]) -> set[str]:
    return {name for name in set(before) | set(wanted) if before.get(name) != wanted.get(name)}


def _summary(applied: set[str], waiting: set[str], restarted: bool = False) -> str:
    if restarted:
        return f"restarted with {', '.join(sorted(applied))}"
    parts = [f"applied {', '.join(sorted(applied))}" if applied else "nothing to apply now"]
    if waiting:
        parts.append(f"a restart puts {', '.join(sorted(waiting))} in effect")
    return "; ".join(parts)


@dataclass(frozen=True)
class Change:
    """How a change of the written values is put in effect: `dynamic` set live to the new
    value, `reset` (removed dynamic ones, with the engine's default) set live back to what
    the server's files now give, `waiting` in effect only after a restart."""

    changed: set[str]
    dynamic: dict[str, str]
    reset: dict[str, str]
    waiting: set[str]


def plan_change(
    before: dict[str, str],
    wanted: dict[str, str],
    rules: dict[str, Parameter],
    reload_rereads_file: bool,
) -> Change:
    """The one rule for what goes live and what waits. A value the engine marks as needing
    a restart waits, added, changed or removed alike. A dynamic value removed goes back at
    once: by the reload that rereads the file where the engine has one (it is given no
    value), else set back to what the server's own files give (the guest reads them)."""
    changed = _changed(before, wanted)
    dynamic = {n: wanted[n] for n in changed if n in wanted and not rules[n].restart_required}
    waiting = {n for n in changed if n in rules and rules[n].restart_required}
    removed = {n for n in changed if n not in wanted and n not in waiting}
    known = {n: rules[n].default for n in removed if n in rules}
    if not reload_rereads_file:
        # A name the engine no longer describes cannot be set live: back at the next start.
        waiting |= removed - set(known)
    return Change(changed, dynamic, known, waiting)


@dataclass(frozen=True)
class Applied:
    """How putting the group in effect on one instance ended, and its last run."""

    ok: bool
    message: str
    run: RunResult


def _running(instance: Instance | None) -> bool:
    return (
        instance is not None and instance.provisioned and instance.status in configurations.RUNNING
    )


def _apply(deps: FlowDeps, claim: Claim, instance: Instance, restart: bool) -> Applied:
    """Write the group's values on `instance` and put them in effect: the dynamic ones
    through its guest, or (with `restart`, if a value that needs one changed) all of them
    by a restart. Raises `Lost` once the claim is lost."""
    version = instance.datastore_version
    spec = datastores.get(version.datastore.name)
    rules = parameter_rules.of_version(version)
    wanted = configurations.engine_values(instance)
    before: dict[str, str] = instance.configuration_values or {}
    result = run_playbook(deps, claim, "instance_configure.yml", instance)
    if result.canceled or not claim.still_ours():
        raise Lost
    if not result.ok:
        return Applied(False, f"Writing the values failed: {result.describe_failure()}", result)
    plan = plan_change(before, wanted, rules, spec.reload_rereads_file)
    changed, dynamic, reset, waiting = plan.changed, plan.dynamic, plan.reset, plan.waiting
    if restart and waiting:
        following, secrets = replica_sources.keep_following(deps, instance)
        restarted = run_playbook(deps, claim, "instance_restart.yml", instance, following, secrets)
        if restarted.canceled or not claim.still_ours():
            raise Lost
        if not restarted.ok:
            why = f"The values are written, but the restart failed: {restarted.describe_failure()}"
            return Applied(False, why, restarted)
        _record_values(deps, instance, wanted, restart_pending=False)
        return Applied(True, _summary(changed, set(), restarted=True), restarted)
    failure = None
    try:
        request = contract.ApplyConfiguration(dynamic, reset)
        deps.bus.call_guest(instance.id, request, guest_context(), deps.settings.call_timeout)
    except errors.TroveSvcError as exc:
        failure = f"The values are written, but applying them failed: {exc.message}"
        waiting |= set(dynamic) | set(reset)
        dynamic, reset = {}, {}
    applied = set(dynamic) | set(reset)
    _record_values(deps, instance, wanted, bool(instance.restart_pending or waiting))
    LOG.info("instance %s configured: %s", instance.id, _summary(applied, waiting))
    return Applied(failure is None, failure or _summary(applied, waiting), result)


def _record_values(
    deps: FlowDeps, instance: Instance, written: dict[str, str], restart_pending: bool
) -> None:
    Instance.update(
        configuration_values=written,
        restart_pending=restart_pending,
        updated_at=deps.settings.clock(),
    ).where(Instance.id == instance.id).execute()


@dataclass(kw_only=True)
class Configuring(FlowState):
    instance: Instance


def _running_instance(deps: FlowDeps, claim: Claim) -> Configuring:
    """The instance, running; or REBOOT with a restart taken while this task was open,
    which waits for it to end (`tasks.RUNS_AFTER`), then restarts with the values."""
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    restart_waits = (
        instance is not None
        and instance.provisioned
        and instance.status == REBOOT
        and tasks.waited_for(claim.task)
    )
    if instance is None or not (_running(instance) or restart_waits):
        raise Skip(NOT_RUNNING)
    return Configuring(deps=deps, claim=claim, instance=instance)


def _apply_values(state: Configuring) -> None:
    applied = _apply(state.deps, state.claim, state.instance, restart=False)
    if not applied.ok:
        raise StepFailed(applied.message, result=applied.run)
    state.outcome = Outcome.of_run(applied.run, applied.message)


CONFIGURE: Flow[Configuring] = Flow(
    begin=_running_instance,
    steps=(Step("applying the group's values", _apply_values),),
)


def configure(deps: FlowDeps, claim: Claim) -> None:
    run_flow(CONFIGURE, deps, claim)


@dataclass(kw_only=True)
class ConfiguringSet(FlowState):
    # The members in the order the engine requires, and that order's name.
    members: list[str]
    order: str


def _replication_set(deps: FlowDeps, claim: Claim) -> ConfiguringSet:
    args = claim.task.args
    return ConfiguringSet(
        deps=deps, claim=claim, members=list(args.get("members", [])), order=args.get("order", "")
    )


def _apply_member_by_member(state: ConfiguringSet) -> None:
    """Each member in turn has the values written and is restarted with them before the
    next one gets them. A member that fails stops the change there, so no replica is ever
    left below its source."""
    deps, claim, members = state.deps, state.claim, state.members
    done: list[str] = []
    for member_id in members:
        if not claim.still_ours():
            raise Lost
        member = Instance.get_or_none(Instance.id == member_id)
        if member is None or not _running(member):
            _record(deps, claim, member_id, member, True, f"skipped: {NOT_RUNNING}")
            continue
        started = deps.settings.clock()
        applied = _apply(deps, claim, member, restart=True)
        _record(deps, claim, member_id, member, applied.ok, applied.message, started)
        if not applied.ok:
            left = "; the members after it keep their values" if member_id != members[-1] else ""
            raise StepFailed(f"{member_id}: {applied.message}{left} ({state.order})")
        done.append(member_id)
    state.outcome = Outcome(f"applied on {', '.join(done) or 'no member'} ({state.order})")


CONFIGURE_SET: Flow[ConfiguringSet] = Flow(
    begin=_replication_set,
    steps=(Step("applying the values member by member", _apply_member_by_member),),
)


def configure_set(deps: FlowDeps, claim: Claim) -> None:
    """A change of hot-standby settings on a replication set (the task is its source's):
    each member in turn (`members`, in the order the engine requires) has the values
    written and is restarted with them before the next one gets them."""
    run_flow(CONFIGURE_SET, deps, claim)


def _record(
    deps: FlowDeps,
    claim: Claim,
    member_id: str,
    member: Instance | None,
    ok: bool,
    message: str,
    started: float | None = None,
) -> None:
    """The member's part of a set's change, in its own audit trail."""
    if member is None:
        return
    now = deps.settings.clock()
    tasks.record_done(
        deps.settings.new_id(),
        member_id,
        member.project_id,
        "configure",
        claim.task.requested_by,
        claim.task.request_id,
        started or now,
        now,
        ok,
        f"{message} (with its replication set: task {claim.task.id})",
        requested_by_project=claim.task.requested_by_project,
    )


FLOWS = {"configure": configure, "configure_set": configure_set}
