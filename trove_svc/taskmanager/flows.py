"""One flow per operation: each is one Ansible run plus the records around it.

A flow runs only on a task its task manager claimed (`trove_svc.tasks`), and records an
outcome only while the claim is still its own: a task canceled by a delete, failed by the
watchdog or taken over by another task manager meanwhile is left as the other party left it.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shutil
import time
from collections.abc import Callable
from typing import Any

from trove_svc import backups, compute, configurations, errors, metrics, status, tasks
from trove_svc.compute import placement
from trove_svc.store.models import Flavor, Instance, ServiceStatus, Task, database_proxy
from trove_svc.taskmanager import backup_store, faults, ports, provisioning, replicas, restoring
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.runner import RunResult, StepCallback
from trove_wire.seal import encode_key

LOG = logging.getLogger(__name__)

# A port another process took between allocation and start is given up this many times.
PORT_ATTEMPTS = 3


def _show_step(instance_id: str) -> StepCallback:
    def on_step(step: str) -> None:
        Instance.update(current_step=step).where(Instance.id == instance_id).execute()

    return on_step


def _run(
    deps: FlowDeps,
    claim: Claim,
    playbook: str,
    instance: Instance,
    extravars: dict[str, Any],
    secrets: dict[str, Any] | None = None,
    suffix: str = "",
    timeout: float | None = None,
    show_steps: bool = True,
) -> RunResult:
    """One Ansible run for the claimed task, stopped as soon as the claim stops holding."""
    task = claim.task
    runs = Task.select(Task.runs).where(Task.id == task.id).scalar() or 0
    tasks.start_run(task.id, claim.owner, playbook)
    ident = task.id if runs == 0 and not suffix else f"{task.id}-{suffix or runs + 1}"
    place = compute.place_of(deps.settings, instance)
    result = deps.runner.run(
        ident=ident,
        playbook=playbook,
        instance_id=instance.id,
        extravars={**provisioning.instance_vars(deps.settings, instance), **extravars},
        secrets=secrets or {},
        on_step=_show_step(instance.id) if show_steps else None,
        timeout=timeout,
        cancel=claim.gone,
        connection=place.connection,
        environment=place.environment,
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


def run_playbook(
    deps: FlowDeps,
    claim: Claim,
    playbook: str,
    instance: Instance,
    secrets: dict[str, Any] | None = None,
    **extravars: Any,
) -> RunResult:
    """One Ansible run for a flow outside this module (no steps shown on the instance)."""
    return _run(deps, claim, playbook, instance, extravars, secrets, show_steps=False)


def _observe(deps: FlowDeps, claim: Claim, outcome: str) -> None:
    started = claim.task.started_at or deps.settings.clock()
    metrics.get().tasks.labels(claim.task.action, outcome).observe(
        max(0.0, deps.settings.clock() - started)
    )


def _finish(deps: FlowDeps, claim: Claim, result: RunResult) -> bool:
    """Record the run's outcome if the task is still ours; False if it was taken."""
    if result.canceled or not claim.still_ours():
        tasks.let_go(claim.task.id, claim.owner)
        _observe(deps, claim, "canceled")
        LOG.info("task %s was taken from this run; leaving it", claim.task.id)
        return False
    _observe(deps, claim, "succeeded" if result.ok else "failed")
    return tasks.finish(
        claim.task.id,
        claim.owner,
        deps.settings.clock(),
        ok=result.ok,
        rc=result.rc,
        artifact_dir=result.artifact_dir,
        failed_step=result.failed_step,
        message=None if result.ok else result.describe_failure(),
    )


def _skip(deps: FlowDeps, claim: Claim, why: str) -> None:
    LOG.info("task %s skipped: %s", claim.task.id, why)
    _observe(deps, claim, "skipped")
    tasks.skip(claim.task.id, claim.owner, deps.settings.clock(), why)


def create(deps: FlowDeps, claim: Claim) -> None:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None or instance.status != status.BUILD or instance.provisioned:
        _skip(deps, claim, "the instance is no longer waiting to be built")
        return
    try:
        restore = restoring.restore_vars(deps.settings, deps.bus, claim.task)
    except restoring.RestoreRefused as exc:
        now = deps.settings.clock()
        if tasks.finish(claim.task.id, claim.owner, now, ok=False, message=str(exc)):
            status.record_fault(instance.id, now, str(exc), only_from=(status.BUILD,))
        return
    try:
        replica, replica_secrets = replicas.replica_vars(deps, instance)
    except errors.TroveSvcError as exc:
        why = f"The replica's source could not be prepared: {exc.message}"
        now = deps.settings.clock()
        if tasks.finish(claim.task.id, claim.owner, now, ok=False, message=why):
            status.record_fault(instance.id, now, why, only_from=(status.BUILD,))
        return
    secrets = deps.keys.task_secrets(claim.task.id, claim.task.sealed_secrets)
    guest_key = deps.keys.instance_key(instance.id, instance.guest_key)
    guest_password = deps.settings.new_secret()
    deps.bus.add_guest_queues(instance.id)
    deps.admin.add_guest(deps.settings.vhost, instance.id, guest_password)
    guest_url = deps.guest_url(f"guest-{instance.id}", guest_password)

    ports.allocate(deps.settings, instance.id)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        instance = Instance.get_by_id(instance.id)
        log = provisioning.datastore_log(deps.settings, instance)
        log_since = faults.log_size(log)
        result = _run(
            deps,
            claim,
            "instance_create.yml",
            instance,
            {
                **provisioning.role_vars(instance, databases=claim.task.args.get("databases", [])),
                **restore,
                **replica,
                **provisioning.guest_install_vars(deps.settings, instance),
            },
            {
                **provisioning.create_secrets(
                    deps.settings,
                    instance,
                    deps.settings.new_secret(),
                    secrets.get("users", []),
                    guest_url,
                    encode_key(guest_key),
                ),
                **replica_secrets,
            },
        )
        fault = None if result.ok else faults.explain(claim.task.id, result, log, log_since)
        if fault is not None and result.unreachable:
            fault = faults.unreachable(claim.task.id, _host_name(instance), result)
        if fault is None or not fault.port_busy or attempt == PORT_ATTEMPTS or result.canceled:
            break
        port = ports.reallocate(deps.settings, instance.id)
        LOG.warning("instance %s: port busy at start; trying port %d", instance.id, port)

    shutil.rmtree(restoring.staging_dir(deps.settings, claim.task.id), ignore_errors=True)
    # Where a provider that learns it while building put the instance, failed or not: the
    # clean-up and a later delete must reach (and remove) it.
    _record_place(instance.id, result)
    instance = Instance.get_or_none(Instance.id == instance.id) or instance
    if fault is not None and not result.canceled and not result.unreachable and claim.still_ours():
        LOG.info("create of %s failed: %s", instance.id, fault.message)
        # Stop what the failed build started before saying ERROR (and while the task is
        # still ours): once a client sees ERROR, nothing of the instance runs. Its files
        # stay, for the logs, until it is deleted.
        _tear_down(deps, claim, instance, purge=False, suffix="cleanup")
    now = deps.settings.clock()
    with database_proxy.atomic():
        if not _finish(deps, claim, result):
            return
        if fault is None:
            Instance.update(
                provisioned=True,
                current_step=None,
                updated_at=now,
                configuration_values=configurations.engine_values(instance),
            ).where(Instance.id == instance.id).execute()
        else:
            status.record_fault(
                instance.id, now, fault.message, fault.details, only_from=(status.BUILD,)
            )
    if fault is None:
        LOG.info("create of %s: done", instance.id)
        status.promote_if_ready(instance.id, now)


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


def _tear_down(
    deps: FlowDeps, claim: Claim, instance: Instance, purge: bool, suffix: str = ""
) -> RunResult:
    """Stop everything the instance runs; with `purge`, remove its files and account too."""
    result = _run(
        deps,
        claim,
        "instance_delete.yml",
        instance,
        compute.purge_vars(instance, purge),
        suffix=suffix,
        timeout=deps.settings.cleanup_timeout,
        show_steps=False,
    )
    if not result.ok:
        LOG.error("tear-down of %s failed: %s", instance.id, result.describe_failure())
    return result


def _cancel_other_tasks(deps: FlowDeps, claim: Claim, instance_id: str) -> None:
    """A delete cancels the instance's other tasks; their runs stop at their next lease
    renewal (or their lease runs out, if their task manager died). Wait for that."""
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


def delete(deps: FlowDeps, claim: Claim) -> None:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None:
        _skip(deps, claim, "the instance is already gone")
        return
    _cancel_other_tasks(deps, claim, instance.id)
    backups.settle_left_behind(instance.id, deps.settings.clock(), backups.INSTANCE_DELETED)
    restoring.archive_before_delete(deps.settings, deps.bus, instance)
    result = _tear_down(deps, claim, instance, purge=True)
    if not _finish(deps, claim, result):
        return
    if not result.ok:
        status.record_fault(
            instance.id,
            deps.settings.clock(),
            "Delete failed: " + result.describe_failure(),
            f"Task {claim.task.id} ({result.status}, rc {result.rc}).",
            only_from=(status.SHUTDOWN,),
        )
        return
    replicas.leave_source(deps, instance)
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
    with its last backup)."""
    if backups.repository_kept(instance_id):
        return
    try:
        backup_store.remove_repository(deps.settings.backups_dir, instance_id)
    except (backup_store.NotRemoved, OSError) as exc:
        LOG.error("the repository of deleted instance %s stays: %s", instance_id, exc)


def _run_on_running_instance(
    deps: FlowDeps,
    claim: Claim,
    instance: Instance,
    playbook: str,
    failure_prefix: str,
) -> RunResult | None:
    """Run a playbook on a built instance; it settles to ACTIVE on the next healthy beat.
    The run's result if it succeeded (None if it failed: the fault is recorded)."""
    log = provisioning.datastore_log(deps.settings, instance)
    log_since = faults.log_size(log)
    following, secrets = replicas.keep_following(deps, instance)
    result = _run(deps, claim, playbook, instance, following, secrets)
    now = deps.settings.clock()
    with database_proxy.atomic():
        if not _finish(deps, claim, result):
            return None
        if result.ok:
            Instance.update(current_step=None, updated_at=now).where(
                Instance.id == instance.id
            ).execute()
    if result.ok:
        return result
    fault = faults.explain(claim.task.id, result, log, log_since)
    status.record_fault(
        instance.id,
        now,
        f"{failure_prefix}: {fault.message}",
        fault.details,
        only_from=(status.REBOOT, status.RESIZE),
    )
    return None


def restart(deps: FlowDeps, claim: Claim) -> None:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None or instance.status != status.REBOOT:
        _skip(deps, claim, "the instance is no longer waiting to restart")
        return
    if _run_on_running_instance(deps, claim, instance, "instance_restart.yml", "Restart failed"):
        _restarted(instance)
        status.promote_if_ready(instance.id, deps.settings.clock())


def _restarted(instance: Instance) -> None:
    """A restart put every value of the configuration group's file in effect."""
    Instance.update(
        restart_pending=False, configuration_values=configurations.engine_values(instance)
    ).where(Instance.id == instance.id).execute()


def reconfigure(deps: FlowDeps, claim: Claim) -> None:
    """A new flavor or new access rules; the record changes once they are applied."""
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None or instance.status not in (status.RESIZE, status.REBOOT):
        _skip(deps, claim, "the instance is no longer waiting for this change")
        return
    args = claim.task.args
    # The playbook sees the instance as it will be; the record follows once it is applied.
    if args.get("flavor_id") is not None:
        instance.flavor = Flavor.get_by_id(args["flavor_id"])
    if args.get("access") is not None:
        instance.access = args["access"]
    done = _run_on_running_instance(
        deps, claim, instance, "instance_reconfigure.yml", "Change failed"
    )
    if done is not None:
        Instance.update(flavor=instance.flavor_id, access=instance.access).where(
            Instance.id == instance.id
        ).execute()
        if done.reported.get(provisioning.role_var(instance, "restarted")):
            _restarted(instance)  # a new flavor's memory, say, needed a restart
        status.promote_if_ready(instance.id, deps.settings.clock())


FLOWS: dict[str, Callable[[FlowDeps, Claim], None]] = {
    "create": create,
    "delete": delete,
    "restart": restart,
    "resize": reconfigure,
    "update_access": reconfigure,
}
