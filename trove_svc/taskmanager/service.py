"""The task manager's process: consume casts, claim each task, run its flow.

Besides the casts it consumes the dead-letter queue (a cast that failed on every delivery:
its instance goes to ERROR saying so). Each on a thread of its own, so that none waits on
another: it renews its claims (`Leases`), starts the backups whose schedule is due (a
publish, which a broker alarm can block), and keeps house every few seconds: it takes over
tasks whose owner died (their lease ran out), removes the secrets files dead runs left
behind, and says it is alive (for the health check).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import peewee

from trove_svc.bus.messages import RunTask, TaskManagerClient
from trove_svc.domain import backups, errors, schedules, status, tasks, warm_pool
from trove_svc.domain.audit import redact
from trove_svc.process import metrics, workers
from trove_svc.process.settings import WarmPoolKey
from trove_svc.security.caller import Caller
from trove_svc.store.models import Task, database_proxy
from trove_svc.taskmanager import backup_flows, configure_flow, failover, flows, replication_flows
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.leases import Leases
from trove_svc.taskmanager.runner import remove_leftovers, remove_path, stop_runs_of
from trove_wire import logs, seal, topology
from trove_wire.amqp import Consumer, Delivery, Requeue
from trove_wire.envelope import Context, Envelope, MalformedMessage

LOG = logging.getLogger(__name__)

# After an attempt failed unexpectedly, wait this long before the message goes back.
RETRY_PAUSE = 1.0

ALL_FLOWS = {
    **flows.FLOWS,
    **replication_flows.FLOWS,
    **configure_flow.FLOWS,
    "backup": backup_flows.backup,
    "delete_backup": backup_flows.delete_backup,
    "verify_backup": backup_flows.verify_backup,
}


class TaskManager:
    def __init__(self, deps: FlowDeps) -> None:
        settings = deps.settings
        self.deps = deps
        self.worker_id = workers.new_id(workers.TASKMANAGER)
        self.leases = Leases(self.worker_id, settings.task_lease, settings.clock)
        self.refused = seal.DropCounter()
        self._stopping = threading.Event()
        self._taking_over: set[str] = set()
        # Warm pools the catalog cannot fill, said once (trove_svc.domain.warm_pool).
        self._unfillable_pools: set[WarmPoolKey] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(settings.taskmanager_workers, thread_name_prefix="task")
        url = deps.bus.url
        self.consumer = Consumer(
            url,
            topology.TASKMANAGER,
            self.on_cast,
            workers=settings.taskmanager_workers,
            declare=topology.declare_control_plane,
            executor=self._pool,
        )
        self.dead_letters = Consumer(url, topology.TASKMANAGER_DEAD, self.on_dead_letter)

    # Messages

    def _task_of(self, delivery: Delivery) -> tuple[RunTask, Envelope] | None:
        try:
            payload = seal.open_sealed(self.deps.keys.control, seal.CAST, delivery.body)
            envelope = Envelope.from_json(payload)
            return RunTask.from_args(envelope.args), envelope
        except seal.Refused as exc:
            self._refuse(exc.reason)
        except (MalformedMessage, KeyError, TypeError, ValueError):
            self._refuse("malformed")
        return None

    def _refuse(self, reason: str) -> None:
        self.refused.add(reason)
        metrics.get().refused.labels("taskmanager", reason).inc()
        LOG.warning("refused a cast (%s)", reason)

    def on_cast(self, delivery: Delivery) -> None:
        found = self._task_of(delivery)
        if found is None:
            return None
        message, envelope = found
        with logs.serving(envelope.context.request_id):
            LOG.info(
                "task %s for instance %s (delivery %d)",
                message.task_id,
                message.instance_id,
                delivery.delivery_count + 1,
            )
            self.run_task(message.task_id, from_message=True)
        return None

    def on_dead_letter(self, delivery: Delivery) -> None:
        found = self._task_of(delivery)
        if found is None:
            return None
        task = Task.get_or_none(Task.id == found[0].task_id)
        if task is None:
            return None
        now = self.deps.settings.clock()
        why = (
            f"The {task.action} task failed on each of {topology.MAX_ATTEMPTS} attempts "
            f"and was given up (dead-lettered). Last attempt: {task.message or 'no detail'}"
        )
        with database_proxy.atomic():
            if tasks.fail_queued(task.id, now, why):
                status.record_fault(task.instance_id, now, why)
        LOG.error("task %s dead-lettered", task.id)
        return None

    # Running a task

    def run_task(self, task_id: str, from_message: bool) -> None:
        """Claim the task and run its flow; a claim we cannot make means there is nothing
        to do (finished, or another task manager's run is going)."""
        if task_id in self.leases.held():
            # Our own run of it is still going (its lease ran out in the store under load):
            # it stops itself; a claim now would share our owner's name with it.
            LOG.info("task %s is still running here; not claiming it again", task_id)
            return
        claimed_at = self.deps.settings.clock()
        try:
            claimed = tasks.claim(
                task_id, self.worker_id, claimed_at, self.deps.settings.task_lease
            )
        except peewee.DatabaseError as exc:
            LOG.error("cannot claim task %s (%s)", task_id, exc)
            if from_message:
                time.sleep(RETRY_PAUSE)
                raise Requeue from exc
            return
        if not claimed:
            LOG.info("task %s is finished or held by a live owner; nothing to do", task_id)
            return
        task = Task.get_by_id(task_id)
        with logs.serving(task.request_id):
            self._run_claimed(task, from_message, claimed_at)

    def _run_claimed(self, task: Task, from_message: bool, claimed_at: float) -> None:
        task_id = task.id
        if task.runs:
            # A run of this task went before and did not finish: its task manager died (or
            # its attempt failed). Nothing of it may go on beside ours, nor stay on disk.
            settings = self.deps.settings
            stop_runs_of(settings.runs_dir, task_id)
            removed = remove_leftovers(settings.secrets_dir, settings.runs_dir, task_id)
            LOG.warning("took over task %s (removed %d leftover files)", task_id, removed)
        lease = self.leases.hold(task_id, claimed_at)
        try:
            flow = ALL_FLOWS.get(task.action)
            if flow is None:
                tasks.skip(
                    task_id,
                    self.worker_id,
                    self.deps.settings.clock(),
                    f"no flow for {task.action!r}",
                )
                return
            flow(self.deps, Claim(task, self.worker_id, lease))
        except Exception as exc:
            LOG.exception("task %s (%s) failed unexpectedly", task_id, task.action)
            self._after_crash(task, exc, from_message)
        finally:
            self.leases.drop(task_id)
            self._let_go_if_ended(task_id)

    def _let_go_if_ended(self, task_id: str) -> None:
        """A flow that stopped because its task was canceled or failed by another party
        drops its claim at once: a delete waiting for the run need not wait for its lease
        to run out."""
        try:
            tasks.let_go(task_id, self.worker_id)
        except peewee.DatabaseError as exc:
            LOG.warning("could not drop the claim on task %s (%s)", task_id, exc)

    def _after_crash(self, task: Task, exc: Exception, from_message: bool) -> None:
        why = redact(f"{type(exc).__name__}: {exc}")[:500]
        if from_message:
            # Give the task back and have the message delivered again (to any task
            # manager); after MAX_ATTEMPTS deliveries it is dead-lettered.
            now = self.deps.settings.clock()
            tasks.release(task.id, self.worker_id, f"Attempt failed: {why}", now)
            time.sleep(RETRY_PAUSE)
            raise Requeue from exc
        now = self.deps.settings.clock()
        text = f"The task manager failed: {why}"
        with database_proxy.atomic():
            if tasks.finish(task.id, self.worker_id, now, ok=False, message=text):
                status.record_fault(task.instance_id, now, text)

    # Housekeeping

    def _take_over(self, task_id: str) -> None:
        try:
            self.run_task(task_id, from_message=False)
        finally:
            with self._lock:
                self._taking_over.discard(task_id)

    def housekeeping(self) -> None:
        settings = self.deps.settings
        now = settings.clock()
        workers.seen(self.worker_id, workers.TASKMANAGER, now)
        for task_id in tasks.expired_leases(now):
            with self._lock:
                if task_id in self._taking_over:
                    continue
                self._taking_over.add(task_id)
            LOG.warning("task %s: its owner stopped renewing; taking it over", task_id)
            self._pool.submit(self._take_over, task_id)
        self._remove_orphan_secrets(now)

    def run_schedules(self) -> None:
        """Start the backups whose schedule is due (one task manager wins each run)."""
        now = self.deps.settings.clock()
        for schedule in schedules.due(now):
            if not schedules.claim(schedule, now):
                continue
            caller = Caller(
                schedule.project_id,
                Context(project=schedule.project_id, user=f"schedule {schedule.name}"),
            )
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
            body = {
                "backup": {
                    "name": f"{schedule.name} {stamp}",
                    "instance": schedule.instance_id,
                    "incremental": schedules.next_is_incremental(schedule),
                }
            }
            service = backups.BackupService(
                self.deps.settings,
                TaskManagerClient(self.deps.bus),
                backup_flows.instance_service(self.deps),
            )
            try:
                service.create(caller, body, schedule_id=schedule.id)
            except errors.TroveSvcError as exc:
                LOG.warning("schedule %s: no backup this time (%s)", schedule.id, exc.message)
                tasks.record_done(
                    self.deps.settings.new_id(),
                    schedule.instance_id,
                    schedule.project_id,
                    "backup",
                    caller.context.user,
                    "",
                    now,
                    now,
                    False,
                    f"scheduled backup not taken: {exc.message}",
                    requested_by_project=caller.context.project,
                )

    def _remove_orphan_secrets(self, now: float) -> None:
        """Secrets files whose run is over: a run killed with its task manager left them.

        Only files of one listing, made before the store is asked, are judged: a run writes
        its secrets after its claim, so a file listed belongs to a claim the store already
        shows, and a file written since (a takeover starting beside this) is not touched."""
        directory = self.deps.settings.secrets_dir
        if not directory.is_dir():
            return
        listed = list(directory.iterdir())
        if not listed:
            return
        live = tasks.holding_leases({path.name[:36] for path in listed}, now)
        for path in listed:
            if path.name[:36] not in live:
                remove_path(path)
                LOG.warning("removed %s, left behind by a run that is over", path.name)

    def _every(self, interval: float, work: Callable[[], object], what: str) -> None:
        while True:
            try:
                work()
            except Exception:
                LOG.exception("%s failed; trying again", what)
            if self._stopping.wait(interval):
                return

    def _start_failovers(self) -> None:
        failover.start_due(self.deps.settings, TaskManagerClient(self.deps.bus))
        failover.start_rejoins(self.deps.settings, TaskManagerClient(self.deps.bus))

    def _keep_warm_pools_filled(self) -> None:
        unknown = warm_pool.keep_filled(self.deps.settings, TaskManagerClient(self.deps.bus))
        for pool in set(unknown) - self._unfillable_pools:
            LOG.error(
                "warm pool %s (TROVE_SVC_WARM_POOL) stays empty: the catalog has no active "
                "version %s of %s, or no flavor %s",
                pool,
                pool.version,
                pool.datastore,
                pool.flavor,
            )
        self._unfillable_pools = set(unknown)

    def run(self) -> None:
        LOG.info("task manager %s started", self.worker_id)
        every = self.leases.renew_every
        loops: dict[str, Callable[[], object]] = {
            "leases": lambda: self.leases.keep_renewing(self._stopping),
            "housekeeping": lambda: self._every(every, self.housekeeping, "housekeeping"),
            "schedules": lambda: self._every(every, self.run_schedules, "running schedules"),
            "failover": lambda: self._every(
                failover.INTERVAL, self._start_failovers, "looking for sources to fail over"
            ),
            "dead-letters": self.dead_letters.run,
            "warm-pools": lambda: self._every(
                warm_pool.INTERVAL, self._keep_warm_pools_filled, "refilling warm pools"
            ),
        }
        for name, loop in loops.items():
            threading.Thread(target=loop, name=name, daemon=True).start()
        try:
            self.consumer.run()
        finally:
            self._stopping.set()
            self.dead_letters.stop()
            self._pool.shutdown(wait=False, cancel_futures=True)
            workers.gone(self.worker_id)

    def stop(self) -> None:
        self._stopping.set()
        self.consumer.stop()
        self.dead_letters.stop()

    def status(self) -> dict[str, Any]:
        return {"held": self.leases.held(), "refused": self.refused.snapshot()}
