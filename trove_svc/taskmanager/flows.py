"""The flows of an instance's life: create, delete, restart and reconfigure, each a list
of steps run by the flow engine (`trove_svc.taskmanager.engine`) around its Ansible run.

A flow runs only on a task its task manager claimed (`trove_svc.domain.tasks`), and records an
outcome only while the claim is still its own: a task canceled by a delete, failed by the
watchdog or taken over by another task manager meanwhile is left as the other party left it.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trove_svc.compute import purge_vars
from trove_svc.domain import backups, configurations, errors, status, tasks
from trove_svc.store.models import Flavor, Instance, ServiceStatus, database_proxy
from trove_svc.taskmanager import (
    backup_flows,
    backup_store,
    faults,
    ports,
    provisioning,
    replica_sources,
    restore_inputs,
    settling,
)
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.engine import (
    Flow,
    FlowState,
    Outcome,
    Skip,
    Step,
    StepFailed,
    lost_if_canceled,
)
from trove_svc.taskmanager.engine import run as run_flow
from trove_svc.taskmanager.runner import RunResult
from trove_svc.taskmanager.runs import run_playbook
from trove_wire.seal import encode_key

LOG = logging.getLogger(__name__)

# An address and port another process took between allocation and start are given up this
# many times.
PORT_ATTEMPTS = 3

# The roles' phases (their tags) a warm instance's build runs ahead of demand (its account,
# its directories, its initialized data directory), and those that make it a tenant's once
# a create claimed it (trove_svc.domain.warm_pool): each run skips the other's.
WARM_PHASES = ("provision", "init")
TENANT_PHASES = ("config", "launch", "backup", "databases", "users")


# Create


@dataclass(kw_only=True)
class Creating(FlowState):
    instance: Instance
    # What the build's run is given besides the instance's own variables.
    extravars: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    guest_url: str = ""
    # The roles' phases this build leaves out (a warm instance's: `WARM_PHASES`, or
    # `TENANT_PHASES`).
    skip_tags: tuple[str, ...] = ()

    @property
    def for_tenant(self) -> bool:
        """Whether the build makes the instance a tenant's (not a warm pool's)."""
        return self.skip_tags != TENANT_PHASES


def _waiting_to_be_built(deps: FlowDeps, claim: Claim) -> Creating:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None or instance.status != status.BUILD or instance.provisioned:
        raise Skip("the instance is no longer waiting to be built")
    claimed_warm = bool(claim.task.args.get("warm"))
    return Creating(
        deps=deps, claim=claim, instance=instance, skip_tags=WARM_PHASES if claimed_warm else ()
    )


def _prepare_restore(state: Creating) -> None:
    """The backup to restore, brought where the build's run finds it."""
    try:
        state.extravars |= restore_inputs.restore_vars(state.deps, state.claim, state.instance)
    except restore_inputs.RestoreRefused as exc:
        raise StepFailed(str(exc)) from exc


def _prepare_replica_source(state: Creating) -> None:
    """A replica's account on its source, and where the source is."""
    try:
        extravars, secrets = replica_sources.replica_vars(state.deps, state.instance)
    except errors.TroveSvcError as exc:
        raise StepFailed(f"The replica's source could not be prepared: {exc.message}") from exc
    state.extravars |= extravars
    state.secrets |= secrets


def _admit_replica(state: Creating) -> None:
    replica_sources.admit_on_members(state.deps, state.claim, state.instance)


def _open_guest_account(state: Creating) -> None:
    """The guest's own queues, and its broker account that may use only them."""
    deps, instance = state.deps, state.instance
    password = deps.settings.new_secret()
    deps.bus.add_guest_queues(instance.id)
    deps.admin.add_guest(deps.settings.vhost, instance.id, password)
    state.guest_url = deps.guest_url(f"guest-{instance.id}", password)


def _build(state: Creating) -> None:
    """The build's run, on another port while the one allocated turns out busy; a failed
    build is stopped before the task ends."""
    ports.allocate(state.deps.settings, state.instance.id)
    result, fault = _build_once(state)
    busy: set[tuple[str, int]] = set()
    for _ in range(1, PORT_ATTEMPTS):
        if fault is None or not fault.port_busy or result.canceled:
            break
        ports.reallocate(state.deps.settings, state.instance.id, busy)
        again = Instance.get_by_id(state.instance.id)
        LOG.warning(
            "instance %s: address busy at start; trying %s port %d",
            state.instance.id,
            again.host,
            again.port,
        )
        result, fault = _build_once(state)
    # Where a provider that learns it while building put the instance, failed or not: the
    # clean-up and a later delete must reach (and remove) it.
    _record_place(state.instance.id, result)
    lost_if_canceled(result)
    if fault is not None:
        _stop_failed_build(state, result, fault)
        raise StepFailed(result.describe_failure(), fault.message, fault.details, result)
    state.outcome = Outcome.of_run(result)


def _build_once(state: Creating) -> tuple[RunResult, faults.Fault | None]:
    deps, claim = state.deps, state.claim
    instance = state.instance = Instance.get_by_id(state.instance.id)
    log = provisioning.datastore_log(deps.settings, instance)
    log_since = faults.log_size(log)
    extravars = {
        **provisioning.role_vars(instance, databases=claim.task.args.get("databases", [])),
        **state.extravars,
        **provisioning.guest_install_vars(deps.settings, instance),
    }
    result = run_playbook(
        deps,
        claim,
        "instance_create.yml",
        instance,
        extravars,
        # A warm instance holds no secret until a tenant's create claims it.
        {**_create_secrets(state), **state.secrets} if state.for_tenant else {},
        show_steps=True,
        skip_tags=state.skip_tags,
    )
    if result.ok:
        return result, None
    if result.unreachable:
        return result, faults.unreachable(claim.task.id, _host_name(instance), result)
    return result, faults.explain(claim.task.id, result, log, log_since)


def _create_secrets(state: Creating) -> dict[str, Any]:
    deps, instance = state.deps, state.instance
    secrets = deps.keys.task_secrets(state.claim.task.id, state.claim.task.sealed_secrets)
    guest_key = deps.keys.instance_key(instance.id, instance.guest_key)
    return provisioning.create_secrets(
        deps.settings,
        instance,
        deps.settings.new_secret(),
        secrets.get("users", []),
        state.guest_url,
        encode_key(guest_key),
    )


def _stop_failed_build(state: Creating, result: RunResult, fault: faults.Fault) -> None:
    """Stop what the failed build started before saying ERROR (and while the task is still
    ours): once a client sees ERROR, nothing of the instance runs. Its files stay, for the
    logs, until it is deleted. A host that never answered has nothing to stop."""
    instance = Instance.get_or_none(Instance.id == state.instance.id) or state.instance
    if result.unreachable or not state.claim.still_ours():
        return
    LOG.info("create of %s failed: %s", instance.id, fault.message)
    _tear_down(state.deps, state.claim, instance, purge=False, suffix="cleanup")


def _remove_staging(state: Creating) -> None:
    shutil.rmtree(
        restore_inputs.staging_dir(state.deps.settings, state.claim.task.id), ignore_errors=True
    )


def _built(state: Creating, ok: bool) -> None:
    if ok:
        instance = Instance.get_or_none(Instance.id == state.instance.id) or state.instance
        Instance.update(
            provisioned=True,
            current_step=None,
            updated_at=state.deps.settings.clock(),
            configuration_values=configurations.engine_values(instance),
        ).where(Instance.id == instance.id).execute()


def _created(state: Creating) -> None:
    LOG.info("create of %s: done", state.instance.id)
    settling.settle(state)


CREATE: Flow[Creating] = Flow(
    begin=_waiting_to_be_built,
    steps=(
        Step("preparing the restore", _prepare_restore),
        Step("preparing the replica's source", _prepare_replica_source),
        Step("admitting the replica on its set's members", _admit_replica),
        Step("opening the guest's broker account", _open_guest_account),
        Step("building", _build),
    ),
    waiting=(status.BUILD,),
    ended=_built,
    after=_created,
    cleanup=_remove_staging,
)


# A create that claimed a warm instance: only what makes it the tenant's (its broker
# account and key, its configuration, access rules, start, databases and users).
CLAIMED_CREATE: Flow[Creating] = Flow(
    begin=_waiting_to_be_built,
    steps=(
        Step("opening the guest's broker account", _open_guest_account),
        Step("making the warm instance the tenant's", _build),
    ),
    waiting=(status.BUILD,),
    ended=_built,
    after=_created,
)


def create(deps: FlowDeps, claim: Claim) -> None:
    run_flow(CLAIMED_CREATE if claim.task.args.get("warm") else CREATE, deps, claim)


# A warm pool's instance (trove_svc.domain.warm_pool), built ahead of demand


def _waiting_to_be_warmed(deps: FlowDeps, claim: Claim) -> Creating:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None or instance.status != status.BUILD or instance.warm_slot is None:
        raise Skip("the instance is no longer waiting in a warm pool")
    return Creating(deps=deps, claim=claim, instance=instance, skip_tags=TENANT_PHASES)


def _warmed(state: Creating, ok: bool) -> None:
    """Built: it waits in its pool for a create to claim it."""
    if ok:
        status.move(state.instance.id, status.BUILD, status.WARM, state.deps.settings.clock())
        Instance.update(current_step=None).where(Instance.id == state.instance.id).execute()


# A warm build runs at this niceness: it yields the CPU to the creates it is made for, the
# ones that claim warm instances as much as those that build from nothing.
WARM_BUILD_NICENESS = 10


def _build_yielding(state: Creating) -> None:
    """`_build`, with its run (ansible-playbook and what it starts) at a lower CPU priority:
    on a thread of its own, since a thread's niceness is kept by it and inherited by the
    processes it starts, and cannot be lowered again without privilege."""
    failed: list[BaseException] = []

    def build() -> None:
        thread = threading.get_native_id()
        niceness = max(os.getpriority(os.PRIO_PROCESS, thread), WARM_BUILD_NICENESS)
        os.setpriority(os.PRIO_PROCESS, thread, niceness)
        try:
            _build(state)
        except BaseException as exc:  # handed to the flow's own thread, re-raised there
            failed.append(exc)

    builder = threading.Thread(target=build, name=f"warm-{state.instance.id}")
    builder.start()
    builder.join()
    if failed:
        raise failed[0]


WARM: Flow[Creating] = Flow(
    begin=_waiting_to_be_warmed,
    steps=(Step("building the warm instance", _build_yielding),),
    waiting=(status.BUILD,),
    ended=_warmed,
)


def warm(deps: FlowDeps, claim: Claim) -> None:
    run_flow(WARM, deps, claim)


def _host_name(instance: Instance) -> str:
    if instance.server and instance.host:
        return f"{instance.server} ({instance.host})"
    return str(instance.server or instance.host or "of the instance")


# A cloud's server id: what later runs name the server by (and never a path or markup).
_SERVER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _record_place(instance_id: str, result: RunResult) -> None:
    """Where a provider that learns it while building (a new server) put the instance: an
    IP address and a server id, or nothing (a later run reaches the address as its host)."""
    place = result.reported.get("trove_place") or {}
    found: dict[Any, str] = {}
    address, server = place.get("address"), place.get("server")
    if isinstance(address, str) and address:
        try:
            found[Instance.host] = str(ipaddress.ip_address(address))
        except ValueError:
            LOG.error("instance %s: its provider reported a host that is no address", instance_id)
    if isinstance(server, str) and _SERVER_ID.fullmatch(server):
        found[Instance.server] = server
    if found:
        Instance.update(found).where(Instance.id == instance_id).execute()


# Delete


def _tear_down(
    deps: FlowDeps, claim: Claim, instance: Instance, purge: bool, suffix: str = ""
) -> RunResult:
    """Stop everything the instance runs; with `purge`, remove its files and account too."""
    result = run_playbook(
        deps,
        claim,
        "instance_delete.yml",
        instance,
        purge_vars(instance, purge),
        suffix=suffix,
        timeout=deps.settings.cleanup_timeout,
    )
    if not result.ok:
        LOG.error("tear-down of %s failed: %s", instance.id, result.describe_failure())
    return result


@dataclass(kw_only=True)
class OnInstance(FlowState):
    """A flow's state that is the instance it works on (and its run, once run)."""

    instance: Instance
    result: RunResult | None = None


def _still_there(deps: FlowDeps, claim: Claim) -> OnInstance:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None:
        raise Skip("the instance is already gone")
    return OnInstance(deps=deps, claim=claim, instance=instance)


def _cancel_other_tasks(state: OnInstance) -> None:
    """A delete cancels the instance's other tasks; their runs stop at their next lease
    renewal (or their lease runs out, if their task manager died). Wait for that."""
    deps, claim, instance_id = state.deps, state.claim, state.instance.id
    tasks.end_open(
        instance_id,
        deps.settings.clock(),
        tasks.TaskState.CANCELED,
        "Canceled: the instance is being deleted.",
        sparing=claim.task.id,
    )
    while claim.still_ours() and tasks.others_held(
        instance_id, claim.task.id, deps.settings.clock()
    ):
        time.sleep(0.5)


def _settle_backups(state: OnInstance) -> None:
    backups.settle_left_behind(
        state.instance.id, state.deps.settings.clock(), backups.INSTANCE_DELETED
    )


def _archive_logs(state: OnInstance) -> None:
    restore_inputs.archive_before_delete(state.deps, state.claim, state.instance)


def _remove_instance(state: OnInstance) -> None:
    result = _tear_down(state.deps, state.claim, state.instance, purge=True)
    lost_if_canceled(result)
    if not result.ok:
        raise StepFailed(
            result.describe_failure(),
            "Delete failed: " + result.describe_failure(),
            f"Task {state.claim.task.id} ({result.status}, rc {result.rc}).",
            result,
        )
    state.outcome = Outcome.of_run(result)


def _forget_instance(state: OnInstance) -> None:
    """Once its files are gone: its place in a replication set, its broker account and
    queues, its records and key, and its backups' repository if no backup keeps it."""
    deps, instance = state.deps, state.instance
    replica_sources.leave_source(deps, instance)
    deps.admin.remove_guest(instance.id)
    deps.bus.delete_guest_queues(instance.id)
    with database_proxy.atomic():
        ServiceStatus.delete().where(ServiceStatus.instance == instance.id).execute()
        Instance.delete().where(Instance.id == instance.id).execute()
    deps.bus.keyring.forget(instance.id)
    _release_repository(deps, instance.id)
    LOG.info("instance %s deleted", instance.id)


def _release_repository(deps: FlowDeps, instance_id: str) -> None:
    """A deleted instance's repository goes with it when no backup keeps it (else it goes
    with its last backup). Backups its tenant deleted that only the live instance kept go
    now (the last of them takes the repository)."""
    backup_flows.remove_released(deps, instance_id)
    if backups.repository_kept(instance_id):
        return
    try:
        backup_store.remove_repository(deps.settings.backups_dir, instance_id)
    except (backup_store.NotRemoved, OSError) as exc:
        LOG.error("the repository of deleted instance %s stays: %s", instance_id, exc)


DELETE: Flow[OnInstance] = Flow(
    begin=_still_there,
    steps=(
        Step("canceling the instance's other tasks", _cancel_other_tasks),
        Step("settling its backups", _settle_backups),
        Step("archiving its logs", _archive_logs),
        Step("removing the instance", _remove_instance),
    ),
    waiting=(status.SHUTDOWN,),
    after=_forget_instance,
)


def delete(deps: FlowDeps, claim: Claim) -> None:
    run_flow(DELETE, deps, claim)


# Restart and reconfigure: a run on a built instance, which settles to ACTIVE on its guest's
# healthy word (`settling`).


def _waiting_in(statuses: tuple[str, ...], why: str) -> Callable[[FlowDeps, Claim], OnInstance]:
    def begin(deps: FlowDeps, claim: Claim) -> OnInstance:
        instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
        if instance is None or instance.status not in statuses:
            raise Skip(why)
        return OnInstance(deps=deps, claim=claim, instance=instance)

    return begin


def _running_playbook(playbook: str, failure_prefix: str) -> Callable[[OnInstance], None]:
    """A step that runs `playbook` on the built instance, which keeps following its source
    if it is a replica; a failure's fault says what the datastore's log says."""

    def run(state: OnInstance) -> None:
        deps, claim, instance = state.deps, state.claim, state.instance
        log = provisioning.datastore_log(deps.settings, instance)
        log_since = faults.log_size(log)
        following, secrets = replica_sources.keep_following(deps, instance)
        result = run_playbook(deps, claim, playbook, instance, following, secrets, show_steps=True)
        lost_if_canceled(result)
        if not result.ok:
            fault = faults.explain(claim.task.id, result, log, log_since)
            message = f"{failure_prefix}: {fault.message}"
            raise StepFailed(result.describe_failure(), message, fault.details, result)
        state.result = result
        state.outcome = Outcome.of_run(result)

    return run


def _step_done(state: OnInstance, ok: bool) -> None:
    if ok:
        Instance.update(current_step=None, updated_at=state.deps.settings.clock()).where(
            Instance.id == state.instance.id
        ).execute()


def _restarted(instance: Instance) -> None:
    """A restart put every value of the configuration group's file in effect."""
    Instance.update(
        restart_pending=False, configuration_values=configurations.engine_values(instance)
    ).where(Instance.id == instance.id).execute()


def _after_restart(state: OnInstance) -> None:
    _restarted(state.instance)
    settling.settle(state)


RESTART: Flow[OnInstance] = Flow(
    begin=_waiting_in((status.REBOOT,), "the instance is no longer waiting to restart"),
    steps=(Step("restarting", _running_playbook("instance_restart.yml", "Restart failed")),),
    waiting=(status.REBOOT, status.RESIZE),
    ended=_step_done,
    after=_after_restart,
)


def restart(deps: FlowDeps, claim: Claim) -> None:
    run_flow(RESTART, deps, claim)


def _as_it_will_be(deps: FlowDeps, claim: Claim) -> OnInstance:
    """The playbook sees the instance as it will be; the record follows once it is applied."""
    state = _waiting_in(
        (status.RESIZE, status.REBOOT), "the instance is no longer waiting for this change"
    )(deps, claim)
    args = claim.task.args
    if args.get("flavor_id") is not None:
        state.instance.flavor = Flavor.get_by_id(args["flavor_id"])
    if args.get("access") is not None:
        state.instance.access = args["access"]
    return state


def _after_reconfigure(state: OnInstance) -> None:
    instance = state.instance
    Instance.update(flavor=instance.flavor_id, access=instance.access).where(
        Instance.id == instance.id
    ).execute()
    restarted = provisioning.role_var(instance, "restarted")
    if state.result is not None and state.result.reported.get(restarted):
        _restarted(instance)  # a new flavor's memory, say, needed a restart
    settling.settle(state)


RECONFIGURE: Flow[OnInstance] = Flow(
    begin=_as_it_will_be,
    steps=(
        Step("applying the change", _running_playbook("instance_reconfigure.yml", "Change failed")),
    ),
    waiting=(status.REBOOT, status.RESIZE),
    ended=_step_done,
    after=_after_reconfigure,
)


def reconfigure(deps: FlowDeps, claim: Claim) -> None:
    """A new flavor or new access rules; the record changes once they are applied."""
    run_flow(RECONFIGURE, deps, claim)


FLOWS: dict[str, Callable[[FlowDeps, Claim], None]] = {
    "create": create,
    "delete": delete,
    "restart": restart,
    "resize": reconfigure,
    "update_access": reconfigure,
    "warm": warm,
}
