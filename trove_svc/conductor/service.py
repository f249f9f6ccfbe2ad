"""The conductor's process: check guest reports, drop stale or forged ones, record the rest.

Each guest's reports arrive on a queue of its own, which only that guest's broker account
can write (`trove_svc.conductor.intake`). A report beyond its guest's rate is dropped
before it is opened (`trove_svc.conductor.rate`), and counted. The others are opened with
the key of the instance whose queue they came from; one that fails (wrong key, another
instance's id, replayed, dated outside the window, not of the contract's shape) is
dropped, counted by reason and logged without its contents, and never changes the store.
Besides, every few seconds the conductor marks instances whose guests fell silent, ends
waits that ran past their limits (`trove_svc.domain.wait_limits`), and reads from the
broker how many reports wait, for the metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from trove_svc.bus.broker import BrokerAdmin
from trove_svc.bus.client import Bus
from trove_svc.conductor.intake import ReportIntake
from trove_svc.conductor.rate import ReportRate
from trove_svc.domain import backups, errors, source_leases, status, wait_limits
from trove_svc.process import metrics, workers
from trove_svc.process.settings import Settings
from trove_svc.security.keys import KeyRing
from trove_svc.store.models import Instance, ServiceStatus
from trove_wire import contract, seal, topology
from trove_wire.amqp import Delivery
from trove_wire.envelope import Envelope, MalformedMessage

LOG = logging.getLogger(__name__)
# A guest over its rate is named in the log at most this often.
RATE_WARNING_EVERY = 30.0


def _instance_ids() -> list[str]:
    """The instances whose guests may report: not those waiting in a warm pool, which have
    no queue until a create claims them (then theirs is looked for at once, not after the
    backoff of a queue long missing)."""
    return [row.id for row in Instance.select(Instance.id).where(Instance.warm_slot.is_null())]


class Conductor:
    def __init__(
        self,
        settings: Settings,
        url: str,
        keyring: KeyRing,
        broker_admin: BrokerAdmin | None = None,
        bus: Bus | None = None,
    ) -> None:
        self._settings = settings
        self._bus = bus or Bus(url, keyring)
        self._broker_admin = broker_admin
        self._clock = settings.clock
        self._keyring = keyring
        self._sweep_every = max(min(settings.heartbeat_interval, 5.0), 0.5)
        self._stopping = threading.Event()
        self.worker_id = workers.new_id(workers.CONDUCTOR)
        self.guard = seal.ReplayGuard(settings.message_window, clock=settings.clock)
        self.refused = seal.DropCounter()
        self.dropped_stale = 0
        self.rate_limited = 0
        self._rate = ReportRate(settings.report_rate, settings.report_burst, settings.clock)
        self._rate_warned_at: dict[str, float] = {}
        self._handlers: dict[str, Callable[[str, Envelope], None]] = {
            contract.Heartbeat.method: self.on_heartbeat,
            contract.BackupReport.method: self.on_backup_report,
        }
        self.intake = ReportIntake(
            url, self.handle, self.admit, instances=_instance_ids, forget=self._forget
        )

    def _refuse(self, reason: str, party: str) -> None:
        self.refused.add(reason)
        metrics.get().refused.labels("conductor", reason).inc()
        LOG.warning("refused a report from the guest of %s (%s)", party[:64], reason)

    def admit(self, instance_id: str, kind: str) -> bool:
        """Whether a report of this instance's guest is within its rate for its kind (as
        the guest declares it: the report is not opened yet, since this runs for every
        report, a flood's included). A kind the conductor does not handle shares one
        bucket, so a guest gets no more buckets by making kinds up."""
        if self._rate.admit(instance_id, kind if kind in self._handlers else ""):
            return True
        self.rate_limited += 1
        metrics.get().reports_rate_limited.inc()
        now = self._clock()
        if now - self._rate_warned_at.get(instance_id, float("-inf")) >= RATE_WARNING_EVERY:
            self._rate_warned_at[instance_id] = now
            LOG.warning(
                "the guest of %s reports more than %g a second; its reports beyond that are "
                "dropped unopened",
                instance_id,
                self._settings.report_rate,
            )
        return False

    def _forget(self, instance_id: str) -> None:
        self._rate.forget(instance_id)
        self._rate_warned_at.pop(instance_id, None)

    def handle(self, instance_id: str, delivery: Delivery) -> None:
        """A report from the guest of `instance_id` (the queue it came from says so: no
        other account can write there)."""
        key = self._keyring.for_instance(instance_id)
        if key is None:
            self._refuse("key", instance_id)
            return None
        try:
            payload = seal.open_sealed(key, seal.report_from(instance_id), delivery.body)
            envelope = Envelope.from_json(payload)
            self.guard.check(envelope.id, envelope.sent_at)
        except seal.Refused as exc:
            self._refuse(exc.reason, instance_id)
            return None
        except MalformedMessage:
            self._refuse("malformed", instance_id)
            return None
        handler = self._handlers.get(envelope.method)
        if handler is None:
            self._refuse("malformed", instance_id)
            return None
        try:
            handler(instance_id, envelope)
        except Exception:
            # Not handled: the broker delivers it again (then dead-letters it), and the
            # same report coming again is no replay.
            self.guard.forget(envelope.id)
            raise
        return None

    def on_heartbeat(self, instance_id: str, envelope: Envelope) -> None:
        try:
            beat = contract.Heartbeat(**envelope.args)
        except TypeError:
            self._refuse("malformed", instance_id)
            return
        newer = ServiceStatus.last_sent_at.is_null() | (
            ServiceStatus.last_sent_at < envelope.sent_at
        )
        now = self._clock()
        healthy = beat.operating_status == status.HEALTHY
        updated = (
            ServiceStatus.update(
                healthy_at=now if healthy else ServiceStatus.healthy_at,
                operating_status=str(beat.operating_status)[:32],
                message=None if beat.message is None else str(beat.message)[:1000],
                disk_used_bytes=beat.disk_used_bytes,
                last_sent_at=envelope.sent_at,
                last_received_at=now,
            )
            .where((ServiceStatus.instance == instance_id) & newer)
            .execute()
        )
        if updated == 0:
            self.dropped_stale += 1
            metrics.get().heartbeats.labels("stale").inc()
            LOG.debug("dropped a stale heartbeat for %s", instance_id)
            return
        metrics.get().heartbeats.labels("recorded").inc()
        if healthy:
            status.promote_if_ready(instance_id, now)
            if beat.beat is not None:
                self._renew_lease(instance_id, str(beat.beat)[:64], beat.leased is True, now)

    def _renew_lease(self, instance_id: str, beat: str, leased: bool, now: float) -> None:
        """A source's healthy heartbeat renews its lease: recorded first, then told to its
        guest (a cast that lives no longer than the lease). A guest that holds a lease its
        instance no longer needs is released from it. A cast the bus does not take is only
        logged: the guest fences its datastore when its lease runs out."""
        lease = self._settings.source_lease
        granted = source_leases.grant(instance_id, now, lease, leased) if lease else None
        message: contract.LeaseGrant | contract.LeaseRelease
        if granted is not None:
            message = contract.LeaseGrant(beat=beat, lease=lease, resume=granted.resume)
        elif leased and (resume := source_leases.release(instance_id, bool(lease))) is not None:
            message = contract.LeaseRelease(beat=beat, resume=resume)
        else:
            return
        try:
            self._bus.cast_guest(instance_id, message, ttl=lease or self._settings.heartbeat_expiry)
        except errors.ServiceUnavailable as exc:
            LOG.warning("the lease of %s not sent: %s", instance_id, exc.message)

    def on_backup_report(self, instance_id: str, envelope: Envelope) -> None:
        """A guest's word on a backup of its own instance (never another's); one that is
        not of the contract's shape, or names what the datastore's tool never would, is
        refused and changes nothing."""
        try:
            changed = backups.record_report(
                envelope.args, instance_id, self._clock(), self._settings.backups_dir
            )
        except contract.BadReport as exc:
            self._refuse("malformed", instance_id)
            LOG.warning("the backup report refused for %s: %s", instance_id, exc)
            return
        if not changed:
            LOG.info("dropped a backup report for %s that changes nothing", instance_id)

    def sweep(self) -> int:
        """Mark silent guests' instances, end overdue waits, say we are alive."""
        now = self._clock()
        workers.seen(self.worker_id, workers.CONDUCTOR, now)
        marked = status.expire_silent_guests(now, self._settings.heartbeat_expiry)
        if marked:
            LOG.warning("%d instance(s) stopped sending heartbeats", marked)
        expired = marked + wait_limits.sweep(self._settings)
        self._observe_backlog()
        return expired

    def _observe_backlog(self) -> None:
        """How many reports wait, how many guests' queues are full, how many reports were
        given up, as the broker's statistics last saw them."""
        if self._broker_admin is None:
            return
        try:
            depths = self._broker_admin.queue_depths(self._settings.vhost)
        except errors.ServiceUnavailable as exc:
            LOG.debug("queue depths unknown: %s", exc.message)
            return
        queued = {
            queue: depth
            for queue, depth in depths.items()
            if queue.startswith(topology.REPORTS_PREFIX)
        }
        full = [queue for queue, depth in queued.items() if depth >= self._settings.report_backlog]
        if full:
            LOG.warning(
                "%d guest(s) at their report backlog; the broker refuses their new reports: %s",
                len(full),
                ", ".join(queue.removeprefix(topology.REPORTS_PREFIX) for queue in full[:10]),
            )
        found = metrics.get()
        found.reports_queued.set(sum(queued.values()))
        found.report_queues_full.set(len(full))
        found.reports_dead_letters.set(depths.get(topology.REPORTS_DEAD, 0))

    def _sweep_loop(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:
                LOG.exception("sweep failed; trying again")
            if self._stopping.wait(self._sweep_every):
                return

    def run(self) -> None:
        LOG.info("conductor %s started", self.worker_id)
        sweeper = threading.Thread(target=self._sweep_loop, name="sweep", daemon=True)
        sweeper.start()
        try:
            self.intake.run()
        finally:
            self._stopping.set()
            workers.gone(self.worker_id)

    def stop(self) -> None:
        self._stopping.set()
        self.intake.stop()

    def status(self) -> dict[str, Any]:
        return {
            "refused": self.refused.snapshot(),
            "stale": self.dropped_stale,
            "rate_limited": self.rate_limited,
        }
