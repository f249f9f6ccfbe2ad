"""What a replica's build and removal need of its source: an account (and slot) on the
source made through its guest, the source's address for the role, and the account dropped
when the replica goes (a PostgreSQL slot left behind would keep WAL forever)."""

from __future__ import annotations

import logging
from typing import Any

from trove_svc import compute
from trove_svc.domain import errors, replication_sets, tasks
from trove_svc.store.models import Instance
from trove_svc.taskmanager import provisioning
from trove_svc.taskmanager.deps import Claim, FlowDeps, guest_context
from trove_svc.taskmanager.engine import StepFailed, lost_if_canceled
from trove_svc.taskmanager.runs import run_playbook
from trove_wire import contract, datastores

LOG = logging.getLogger(__name__)


# What a server follows: a source's address, nothing while it takes writes, or this:
# nothing, and it takes no writes either.
FENCED = {"fenced": True}
TAKES_WRITES: dict[str, Any] = {}


def following_vars(instance: Instance, following: dict[str, Any]) -> dict[str, Any]:
    """The role's `<datastore>_replication`: what `instance` follows."""
    return provisioning.role_vars(instance, replication=following)


def source_address(deps: FlowDeps, source: Instance, account: dict[str, str]) -> dict[str, Any]:
    """The role's `<datastore>_replication` for a replica of `source` (never a secret)."""
    datastore = source.datastore_version.datastore.name
    base_dir = str(compute.place_of(deps.settings, source).instance_dir / datastore)
    read_files = datastores.get(datastore).replica_source_files
    return {
        "host": source.host or compute.LOCAL_SHARED_ADDRESS,
        "port": source.port,
        "user": account["user"],
        "slot": account.get("slot", ""),
        **(read_files(base_dir) if read_files else {}),
    }


def follow_vars(
    deps: FlowDeps, replica: Instance, source: Instance
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Extravars and secrets that make `replica` follow `source`: a new password for its
    account on the source, set there through the source's guest first."""
    password = deps.settings.new_secret()
    account = deps.bus.call_guest(
        source.id,
        contract.AddReplicationAccount(replica.id, password),
        guest_context(),
        deps.settings.call_timeout,
    )
    return (
        following_vars(replica, source_address(deps, source, account)),
        provisioning.role_vars(replica, replication_password=password),
    )


def replica_vars(deps: FlowDeps, instance: Instance) -> tuple[dict[str, Any], dict[str, Any]]:
    """For a create: nothing for a standalone instance; for a replica, what its role needs
    to copy the source and follow it."""
    if not instance.replica_of_id:
        return {}, {}
    source = Instance.get_or_none(Instance.id == instance.replica_of_id)
    if source is None:
        raise errors.NotFound(f"Instance {instance.replica_of_id} (the source) is gone.")
    return follow_vars(deps, instance, source)


def admit_on_members(deps: FlowDeps, claim: Claim, replica: Instance) -> None:
    """Where a source admits its replicas by their address, the set's built members admit
    a new replica before it copies its source: the source must (or the copy is refused),
    the other replicas should (any of them may be its source after a failover; one that
    cannot now admits it at its next run; one busy with a task of its own admits it in
    that task's run, which started after the replica was recorded)."""
    datastore = datastores.get(replica.datastore_version.datastore.name)
    if not (replica.replica_of_id and datastore.admits_replicas_by_address):
        return
    for member_id in replication_sets.members(replica):  # its source first
        member = Instance.get_or_none(Instance.id == member_id)
        if member is None or member.id == replica.id or not member.provisioned:
            continue
        if member.id != replica.replica_of_id and tasks.is_busy(member.id):
            continue
        result = run_playbook(deps, claim, "instance_peers.yml", member)
        lost_if_canceled(result)
        if result.ok:
            continue
        if member.id == replica.replica_of_id:
            raise StepFailed(
                f"The source {member.id} could not admit the replica: {result.describe_failure()}",
                result=result,
            )
        LOG.warning(
            "replica %s: %s does not admit it yet (%s)",
            replica.id,
            member.id,
            result.describe_failure(),
        )


def keep_following(deps: FlowDeps, instance: Instance) -> tuple[dict[str, Any], dict[str, Any]]:
    """For a restart or resize: a replica (or a fenced former source) is told again what
    it follows, so that it can never come back taking writes; fenced if its source does
    not answer. Nothing for an instance that is no replica."""
    if not instance.replica_of_id:
        return {}, {}
    source = Instance.get_or_none(Instance.id == instance.replica_of_id)
    if source is not None:
        try:
            extravars, secrets = follow_vars(deps, instance, source)
            return {**extravars, "trove_keep_following": True}, secrets
        except errors.TroveSvcError as exc:
            LOG.warning(
                "replica %s: its source does not answer (%s); fenced", instance.id, exc.message
            )
    return {**following_vars(instance, FENCED), "trove_keep_following": True}, {}


def leave_source(deps: FlowDeps, instance: Instance) -> None:
    """A replica is gone: drop its account and slot on its source (if the source answers;
    if not, they go when the source is deleted)."""
    if not instance.replica_of_id:
        return
    try:
        deps.bus.call_guest(
            instance.replica_of_id,
            contract.RemoveReplicationAccount(instance.id),
            guest_context(),
            deps.settings.call_timeout,
        )
    except errors.TroveSvcError as exc:
        LOG.warning(
            "replica %s: its account on %s stays (%s)",
            instance.id,
            instance.replica_of_id,
            exc.message,
        )
