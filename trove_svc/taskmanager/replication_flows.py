"""Flows that move writes within a replication set: a switchover (promote a replica), a
failover (eject a failed source, by hand or by the task manager itself), and a detach.

Each changes the datastores first and `Instance.replica_of_id` with them. The fast part of
a failover (asking the replicas how far they are, promoting the most advanced one) goes
through the guests; following a new source and fencing the old one go through the role
(`instance_replication.yml`), which writes what each server follows into its own files,
so a server started again by hand comes back as what it was made, never as a second
writable source.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trove_svc import compute
from trove_svc.domain import errors, replication_sets, source_leases, status, tasks
from trove_svc.store.models import Instance, database_proxy
from trove_svc.taskmanager import rejoin_report, settling
from trove_svc.taskmanager.deps import Claim, FlowDeps, guest_context
from trove_svc.taskmanager.engine import (
    Flow,
    FlowState,
    Outcome,
    Skip,
    Step,
    StepFailed,
    carry_on,
    lost_if_canceled,
)
from trove_svc.taskmanager.engine import run as run_flow
from trove_svc.taskmanager.replica_sources import FENCED, TAKES_WRITES, follow_vars, following_vars
from trove_svc.taskmanager.runs import run_playbook
from trove_wire import contract

LOG = logging.getLogger(__name__)

# How long a replica may take to receive and apply what its fenced source wrote.
CATCH_UP_TIMEOUT = 60.0
# How long a server told to follow a source may take to stream from it.
FOLLOW_TIMEOUT = 30.0
STREAMING_LOOKS = 4
# A failover waits this long past the end of its source's lease (clocks of the conductor's
# and the task manager's hosts may differ by a little).
LEASE_MARGIN = 0.5
# A replica that does not answer this quickly is not a candidate for a failover.
STATE_TIMEOUT = 5.0


class ReplicationFailed(Exception):
    """A step of the flow failed; the message says which, for the task and the fault."""


def _call(deps: FlowDeps, instance_id: str, call: contract.Call[Any], timeout: float = 0) -> Any:
    try:
        return deps.bus.call_guest(
            instance_id, call, guest_context(), timeout or deps.settings.call_timeout
        )
    except errors.TroveSvcError as exc:
        raise ReplicationFailed(f"{call.method} on {instance_id}: {exc.message}") from exc


def _set_following(
    deps: FlowDeps,
    claim: Claim,
    instance: Instance,
    replication_vars: dict[str, Any],
    secrets: dict[str, Any] | None = None,
) -> None:
    """Run the role's replication entry point on `instance` (see the playbook)."""
    result = run_playbook(
        deps, claim, "instance_replication.yml", instance, replication_vars, secrets
    )
    if not result.ok:
        raise ReplicationFailed(f"instance {instance.id}: {result.describe_failure()}")


def _follow(deps: FlowDeps, claim: Claim, replica: Instance, source: Instance) -> None:
    """Make `replica` follow `source`, and see it stream: a server whose data went further
    than its new source's (a failed-over source that took writes the replica never had)
    cannot follow it, and stays read-only until it is rebuilt."""
    extravars, secrets = follow_vars(deps, replica, source)
    _set_following(deps, claim, replica, extravars, secrets)
    _wait_streaming(deps, replica, source)


def _wait_streaming(deps: FlowDeps, replica: Instance, source: Instance) -> None:
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    why = "it does not stream"
    # A server that cannot follow connects, is refused, and tries again: streaming counts
    # when it holds for a few looks in a row.
    held = 0
    while time.monotonic() < deadline:
        try:
            streaming = _call(deps, replica.id, contract.ReplicationState())["streaming"]
            held = held + 1 if streaming else 0
            if held >= STREAMING_LOOKS:
                return
        except ReplicationFailed as exc:  # its guest may still be starting
            why = str(exc)
            held = 0
        time.sleep(0.5)
    raise ReplicationFailed(
        f"instance {replica.id} does not follow {source.id} ({why}); it takes no writes, and "
        "may have to be recreated from its source if its data went further"
    )


def _fence(deps: FlowDeps, claim: Claim, instance: Instance) -> None:
    _set_following(deps, claim, instance, following_vars(instance, FENCED))


def _take_writes(deps: FlowDeps, claim: Claim, instance: Instance) -> None:
    """Write down that a promoted server takes writes (its next start keeps it so)."""
    _set_following(deps, claim, instance, following_vars(instance, TAKES_WRITES))


def _wait_caught_up(deps: FlowDeps, replica: Instance, position: int) -> int:
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while True:
        state = _call(deps, replica.id, contract.ReplicationState())
        if int(state["applied"]) >= position:
            return int(state["applied"])
        if time.monotonic() > deadline:
            raise ReplicationFailed(
                f"replica {replica.id} did not catch up with its source within "
                f"{CATCH_UP_TIMEOUT:g} s (at {state['applied']}, source at {position})"
            )
        time.sleep(0.2)


def _record(
    deps: FlowDeps, claim: Claim, instance: Instance, action: str, ok: bool, message: str
) -> None:
    """The event in the audit trail of an instance the task is not on."""
    now = deps.settings.clock()
    tasks.record_done(
        deps.settings.new_id(),
        instance.id,
        instance.project_id,
        action,
        claim.task.requested_by,
        claim.task.request_id,
        now,
        now,
        ok,
        message,
        requested_by_project=claim.task.requested_by_project,
    )


def _repoint(
    deps: FlowDeps, claim: Claim, new_source: Instance, followers: list[Instance], why: str
) -> list[str]:
    """Have `followers` follow `new_source`; returns what failed (each also in the
    follower's audit trail, and as its fault)."""
    problems = []
    for follower in followers:
        try:
            _follow(deps, claim, follower, new_source)
            _record(
                deps, claim, follower, "replication", True, f"now follows {new_source.id} ({why})"
            )
        except (ReplicationFailed, errors.TroveSvcError) as exc:
            text = str(exc) if isinstance(exc, ReplicationFailed) else exc.message
            problems.append(f"{follower.id}: {text}")
            _record(
                deps,
                claim,
                follower,
                "replication",
                False,
                f"could not follow {new_source.id} ({why}): {text}",
            )
            status.record_fault(
                follower.id,
                deps.settings.clock(),
                f"This instance could not be made to follow {new_source.id} ({why}): {text}",
            )
    return problems


def _confirmed(claim: Claim) -> bool:
    return claim.confirmed()


def _but(done: str, problems: list[str]) -> None:
    """A step whose main part was done fails if what came with it did not."""
    if problems:
        raise StepFailed(f"{done}, but: {'; '.join(problems)}")


# Switchover


@dataclass(kw_only=True)
class Switchover(FlowState):
    replica: Instance
    source: Instance
    others: list[Instance]
    fenced: bool = False
    # The new source's replication state once it took writes.
    promoted: dict[str, Any] | None = None


def _waiting_to_be_promoted(deps: FlowDeps, claim: Claim) -> Switchover:
    replica = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if replica is None or replica.status != status.PROMOTE or not replica.replica_of_id:
        raise Skip("the instance is no longer waiting to be promoted")
    source = Instance.get_by_id(replica.replica_of_id)
    others = [r for r in replication_sets.replicas_of(source.id) if r.id != replica.id]
    return Switchover(deps=deps, claim=claim, replica=replica, source=source, others=others)


def _fence_source(state: Switchover) -> None:
    """The source stops taking writes: a clean stop for PostgreSQL, read-only for MariaDB,
    refusing writes for Redis (once the replica answered)."""
    try:
        _call(state.deps, state.replica.id, contract.ReplicationState())
        _fence(state.deps, state.claim, state.source)
    except (ReplicationFailed, errors.TroveSvcError) as exc:
        raise StepFailed(f"Switchover not started: {exc}") from exc
    state.fenced = True


def _promote_replica(state: Switchover) -> None:
    """Once the replica applied all its fenced source wrote, it takes writes; the records
    follow what the datastores now are, whoever holds the task."""
    deps, source, replica = state.deps, state.source, state.replica
    try:
        position = int(_call(deps, source.id, contract.ReplicationState())["position"])
        _wait_caught_up(deps, replica, position)
        promoted = _call(deps, replica.id, contract.Promote(), timeout=90)
    except ReplicationFailed as exc:
        promoted = _undo_switchover(deps, state.claim, source, replica, exc)
    state.promoted = promoted
    now = deps.settings.clock()
    with database_proxy.atomic():
        replication_sets.set_source([replica.id], None, now)
        replication_sets.set_source([source.id] + [o.id for o in state.others], replica.id, now)
    LOG.info("switchover: %s is the source at position %s", replica.id, promoted["position"])


def _old_source_follows(state: Switchover) -> None:
    replica = state.replica = Instance.get_by_id(state.replica.id)
    followers = [state.source, *state.others]
    problems = _after_promotion(state.deps, state.claim, replica, followers, "a switchover")
    _but("Promoted", problems)
    position = state.promoted["position"] if state.promoted else None
    state.outcome = Outcome(
        f"switchover: this instance is the source (position {position}); "
        f"{state.source.id} follows it"
    )


def _unfence_unless_taken_over(state: Switchover) -> None:
    """The task was ended after the source was fenced and before the replica took writes:
    the source takes writes again (unless another task manager now runs the switchover),
    so the set never stays without a writable source."""
    source = state.source
    if not state.fenced or state.promoted is not None:
        return
    if tasks.run_elsewhere(state.claim.task.id, state.claim.owner):
        return
    try:
        _call(state.deps, source.id, contract.Promote(), timeout=90)
        LOG.warning("switchover of %s stopped: its source takes writes again", source.id)
    except ReplicationFailed as exc:
        LOG.error(
            "switchover stopped, and source %s could not take writes again: %s", source.id, exc
        )


def _undo_switchover(
    deps: FlowDeps, claim: Claim, source: Instance, replica: Instance, failure: Exception
) -> dict[str, Any]:
    """A switchover step failed. If the replica did take writes after all (a promotion
    that answered late), go on: its state, returned. If it surely still follows, nothing
    moved: the source takes writes again. If that cannot be known, the source stays fenced
    (never two writable sources): an operator looks."""
    try:
        state = _call(deps, replica.id, contract.ReplicationState())
    except ReplicationFailed as unknown:
        why = f"{failure}; the replica's state is unknown ({unknown}), so the source stays fenced"
        raise StepFailed(f"Switchover failed: {why}") from unknown
    if not state["replica"]:
        LOG.warning("switchover to %s: the promotion answered late; going on", replica.id)
        return dict(state)
    LOG.warning("switchover to %s failed (%s); the source takes writes again", replica.id, failure)
    try:
        _call(deps, source.id, contract.Promote(), timeout=90)
        _take_writes(deps, claim, source)
    except ReplicationFailed as undo:
        failure = ReplicationFailed(
            f"{failure}; and the source could not take writes again: {undo}"
        )
    raise StepFailed(f"Switchover failed: {failure}")


SWITCHOVER: Flow[Switchover] = Flow(
    begin=_waiting_to_be_promoted,
    steps=(
        Step("fencing the source", _fence_source),
        Step("promoting the replica", _promote_replica),
        Step("having the old source follow", _old_source_follows),
    ),
    waiting=(status.PROMOTE,),
    # Never carried on by two runs: before each step, the store must still name it ours.
    holds=_confirmed,
    after=settling.settle,
    stopped=_unfence_unless_taken_over,
)


def promote(deps: FlowDeps, claim: Claim) -> None:
    """Switchover: fence the source, wait until the replica has applied all it wrote,
    promote the replica, then have the old source and the other replicas follow it. Before
    each step it checks that the task is still its own, so a task ended or taken over
    meanwhile is never carried on by two runs."""
    run_flow(SWITCHOVER, deps, claim)


def _after_promotion(
    deps: FlowDeps, claim: Claim, new_source: Instance, followers: list[Instance], why: str
) -> list[str]:
    """The slow part, once writes go to `new_source`: its files say it takes writes, the
    followers follow it, and the accounts it copied from its old source are dropped."""
    problems = []
    try:
        _take_writes(deps, claim, new_source)
    except ReplicationFailed as exc:
        problems.append(str(exc))
    problems += _repoint(deps, claim, new_source, followers, why)
    try:
        _call(deps, new_source.id, contract.RemoveReplicationAccount(new_source.id))
    except ReplicationFailed as exc:
        LOG.warning("%s keeps its old replication account (%s)", new_source.id, exc)
    return problems


# Failover


def _listens(host: str, port: int) -> bool:
    """Whether something accepts connections on the source's address and port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _most_advanced(deps: FlowDeps, replicas: list[Instance]) -> tuple[Instance, int] | None:
    best: tuple[Instance, int] | None = None
    for replica in replicas:
        try:
            state = _call(deps, replica.id, contract.ReplicationState(), timeout=STATE_TIMEOUT)
        except ReplicationFailed as exc:
            LOG.warning("failover: replica %s is no candidate (%s)", replica.id, exc)
            continue
        if best is None or int(state["position"]) > best[1]:
            best = (replica, int(state["position"]))
    return best


@dataclass(kw_only=True)
class Failover(FlowState):
    source: Instance
    candidates: list[Instance]
    new_source: Instance | None = None
    at: Any = None  # the new source's position when it took writes
    problems: list[str] = field(default_factory=list)
    # The source held a lease, which has run out: it fenced itself.
    leased: bool = False


def _waiting_to_fail_over(deps: FlowDeps, claim: Claim) -> Failover:
    source = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if source is None or source.status != status.EJECT:
        raise Skip("the instance is no longer waiting to be failed over")
    return Failover(
        deps=deps, claim=claim, source=source, candidates=replication_sets.replicas_of(source.id)
    )


def _wait_out_lease(state: Failover) -> None:
    """A source that held a lease fenced itself (or its watchdog stopped it) before the
    lease ran out: once the lease's end is past, nothing is asked of it (it may hang, or be
    out of reach). Its end no longer moves: no lease is granted to a source in EJECT. The
    wait is in its audit trail."""
    deps, source = state.deps, state.source
    began = deps.settings.clock()
    while True:
        end = source_leases.lease_end(source.id)
        if end is None:
            return
        remaining = end + LEASE_MARGIN - deps.settings.clock()
        if remaining <= 0:
            break
        time.sleep(min(remaining, 1.0))
    state.leased = True
    waited = deps.settings.clock() - began
    _record(
        deps,
        state.claim,
        source,
        "lease",
        True,
        f"its lease ran out (waited {waited:.1f} s): it fenced itself, so it is not asked to",
    )


def _fence_if_listening(state: Failover) -> None:
    """Only its guest is silent, or its datastore hangs: it may still take writes. Fenced
    first (unless its lease did it), or not failed over at all."""
    source = state.source
    if state.leased:
        return
    if not (source.port and _listens(source.host or compute.LOCAL_SHARED_ADDRESS, source.port)):
        return
    try:
        _fence(state.deps, state.claim, source)
    except ReplicationFailed as exc:
        raise StepFailed(
            f"Failover not started: the source still listens and could not be fenced ({exc})."
        ) from exc


def _promote_most_advanced(state: Failover) -> None:
    deps, source = state.deps, state.source
    chosen = _most_advanced(deps, state.candidates)
    if chosen is None:
        raise StepFailed("Failover failed: no replica of this instance answered.")
    new_source, position = chosen
    try:
        promoted = _call(deps, new_source.id, contract.Promote(), timeout=90)
    except ReplicationFailed as exc:
        raise StepFailed(f"Failover failed: {exc}") from exc
    now = deps.settings.clock()
    others = [r.id for r in state.candidates if r.id != new_source.id]
    with database_proxy.atomic():
        replication_sets.set_source([new_source.id], None, now)
        replication_sets.set_source([source.id, *others], new_source.id, now)
    state.at = at = promoted["position"]
    LOG.warning(
        "failover: %s replaces %s as the source, at position %s (received %s)",
        new_source.id,
        source.id,
        at,
        position,
    )
    message = f"promoted in place of {source.id} (failover) at position {at}"
    _record(deps, state.claim, new_source, "promote", True, message)
    state.new_source = Instance.get_by_id(new_source.id)


def _others_follow(state: Failover) -> None:
    assert state.new_source is not None
    others = [r for r in state.candidates if r.id != state.new_source.id]
    state.problems += _after_promotion(
        state.deps, state.claim, state.new_source, others, "a failover"
    )


def _fence_old_source(state: Failover) -> None:
    """The old source last: fenced, it follows the new one (if its data allows). With
    automatic rejoin it is left as it is: it rejoins (fenced, rewound, following) once its
    guest reports again (`rejoin`)."""
    new_source = state.new_source
    assert new_source is not None
    if state.deps.settings.auto_rejoin:
        _but(f"Failed over to {new_source.id}", state.problems)
        state.outcome = Outcome(
            f"failover: {new_source.id} is the source (position {state.at}); this instance "
            "rejoins as its replica once its guest reports again"
        )
        return
    try:
        _fence(state.deps, state.claim, state.source)
        _follow(state.deps, state.claim, state.source, new_source)
    except (ReplicationFailed, errors.TroveSvcError) as exc:
        state.problems.append(f"the old source could not be fenced yet: {exc}")
    _but(f"Failed over to {new_source.id}", state.problems)
    state.outcome = Outcome(
        f"failover: {new_source.id} is the source (position {state.at}); "
        "this instance is fenced and follows it"
    )


FAILOVER: Flow[Failover] = Flow(
    begin=_waiting_to_fail_over,
    steps=(
        Step("waiting for the source's lease to run out", _wait_out_lease),
        Step("fencing the source if it still listens", _fence_if_listening),
        Step("promoting the most advanced replica", _promote_most_advanced),
        Step("having the other replicas follow it", _others_follow),
        Step("fencing the old source", _fence_old_source),
    ),
    waiting=(status.EJECT,),
    # Once started, a failover goes to its end: a set is never left half failed over.
    holds=carry_on,
    after=settling.settle,
)


def eject(deps: FlowDeps, claim: Claim) -> None:
    """Failover: promote the most advanced replica of a source that stopped working, have
    the others follow it, and fence the old source: it follows the new one (in standby,
    or read-only), so it never takes writes again, even when it comes back."""
    run_flow(FAILOVER, deps, claim)


# Detach


@dataclass(kw_only=True)
class Detaching(FlowState):
    replica: Instance
    source_id: str
    problems: list[str] = field(default_factory=list)


def _waiting_to_be_detached(deps: FlowDeps, claim: Claim) -> Detaching:
    replica = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if replica is None or replica.status != status.DETACH or not replica.replica_of_id:
        raise Skip("the instance is no longer waiting to be detached")
    return Detaching(deps=deps, claim=claim, replica=replica, source_id=replica.replica_of_id)


def _stop_following(state: Detaching) -> None:
    try:
        _call(state.deps, state.replica.id, contract.Promote(), timeout=90)
    except ReplicationFailed as exc:
        raise StepFailed(f"Detach failed: {exc}") from exc
    replication_sets.set_source([state.replica.id], None, state.deps.settings.clock())
    try:
        _take_writes(state.deps, state.claim, state.replica)
    except ReplicationFailed as exc:
        state.problems.append(str(exc))


def _remove_replication_accounts(state: Detaching) -> None:
    """Its account on the source, and the one it copied from it."""
    replica = state.replica
    for instance_id in (state.source_id, replica.id):
        try:
            _call(state.deps, instance_id, contract.RemoveReplicationAccount(replica.id))
        except ReplicationFailed as exc:
            LOG.warning("detach of %s: an account stays (%s)", replica.id, exc)
    _but("Detached", state.problems)
    state.outcome = Outcome(
        f"detached from {state.source_id}: this instance takes writes on its own"
    )


DETACH: Flow[Detaching] = Flow(
    begin=_waiting_to_be_detached,
    steps=(
        Step("promoting the replica", _stop_following),
        Step("removing its replication accounts", _remove_replication_accounts),
    ),
    waiting=(status.DETACH,),
    holds=carry_on,
    after=settling.settle,
)


def detach(deps: FlowDeps, claim: Claim) -> None:
    """The replica stops following and takes writes; its account on the source goes."""
    run_flow(DETACH, deps, claim)


# Rejoin


@dataclass(kw_only=True)
class Rejoining(FlowState):
    instance: Instance
    source: Instance
    # What the rejoin did to the data, in words.
    done: str = ""


def _waiting_to_rejoin(deps: FlowDeps, claim: Claim) -> Rejoining:
    instance = Instance.get_or_none(Instance.id == claim.task.instance_id)
    if instance is None or instance.status != status.REJOIN or not instance.replica_of_id:
        raise Skip("the instance is no longer waiting to rejoin its set")
    source = Instance.get_or_none(Instance.id == instance.replica_of_id)
    if source is None:
        raise Skip(f"its source {instance.replica_of_id} is gone")
    return Rejoining(deps=deps, claim=claim, instance=instance, source=source)


def _rewind(state: Rejoining) -> None:
    """Stopped, its data made the source's history again (the engine's way: PostgreSQL
    rewinds, or copies afresh when it cannot), then started following the source."""
    deps, claim, instance, source = state.deps, state.claim, state.instance, state.source
    try:
        extravars, secrets = follow_vars(deps, instance, source)
    except errors.TroveSvcError as exc:
        raise StepFailed(
            f"Rejoin failed: its source {source.id} did not answer ({exc.message})."
        ) from exc
    result = run_playbook(deps, claim, "instance_rejoin.yml", instance, extravars, secrets)
    lost_if_canceled(result)
    if not result.ok:
        raise StepFailed(f"Rejoin failed: {result.describe_failure()}", result=result)
    datastore = instance.datastore_version.datastore.name
    state.done = rejoin_report.describe(result.reported.get(f"{datastore}_rejoin"), source.id)
    _record(deps, claim, instance, "rewind", True, state.done)
    state.outcome = Outcome.of_run(result)


def _stream_from_source(state: Rejoining) -> None:
    try:
        _wait_streaming(state.deps, state.instance, state.source)
    except ReplicationFailed as exc:
        raise StepFailed(f"Rejoin failed: {exc}") from exc
    state.outcome.message = f"rejoined: follows {state.source.id}; {state.done}"


REJOIN: Flow[Rejoining] = Flow(
    begin=_waiting_to_rejoin,
    steps=(
        Step("rewinding it to its source", _rewind),
        Step("waiting for it to stream from its source", _stream_from_source),
    ),
    waiting=(status.REJOIN,),
    holds=carry_on,
    after=settling.settle,
)


def rejoin(deps: FlowDeps, claim: Claim) -> None:
    """A failed-over source comes back as a replica of the source that replaced it: what
    it wrote after the failover is discarded, never merged, and the audit trail says how
    much where the engine can tell."""
    run_flow(REJOIN, deps, claim)


FLOWS: dict[str, Callable[[FlowDeps, Claim], None]] = {
    "promote": promote,
    "eject": eject,
    "detach": detach,
    "rejoin": rejoin,
}
