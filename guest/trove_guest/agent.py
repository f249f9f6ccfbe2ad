"""The guest agent's process: answer calls on guestagent.<id>, send heartbeats."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, cast

from trove_guest import daemon, disk
from trove_guest.backup_runner import BackupRunner
from trove_guest.config import GuestConfig
from trove_guest.drivers import DatastoreDriver, FencingDriver, load_driver
from trove_guest.lease import CHECK_EVERY, LeaseKeeper, WatchdogFeed
from trove_guest.watchdog import WatchdogProcess
from trove_wire import contract, datastores, logs, seal, topology
from trove_wire.amqp import (
    CONNECTION_ERRORS,
    BrokerUnavailable,
    Consumer,
    Delivery,
    NoConsumerQueue,
    Publisher,
)
from trove_wire.envelope import Envelope, MalformedMessage, Reply

LOG = logging.getLogger("trove_guest")


class Agent:
    """Answers the control plane's calls and reports health, every message sealed with
    the instance's key. A message that fails a check gets no answer: it is dropped,
    counted and logged without its contents."""

    def __init__(
        self,
        config: GuestConfig,
        driver: DatastoreDriver,
        watchdog: Callable[[Path, int], WatchdogFeed] = WatchdogProcess,
    ) -> None:
        self.config = config
        self.driver = driver
        self._new_watchdog = watchdog
        self._key = config.key_bytes
        self._stopping = threading.Event()
        self._beat_now = threading.Event()
        self._publisher: Publisher | None = None
        self._report_lock = threading.RLock()
        self.guard = seal.ReplayGuard(config.message_window)
        self.refused = seal.DropCounter()
        self.backups = BackupRunner(config, self.report)
        self._watchdog: WatchdogFeed | None = None
        self.lease = self._lease_keeper()
        self.consumer = Consumer(
            config.transport_url,
            config.queue,
            self.handle,
            workers=2,
            reply_exchange=config.exchange,
        )

    def handle(self, delivery: Delivery) -> bytes | None:
        instance_id = self.config.instance_id
        try:
            payload = seal.open_sealed(self._key, seal.to_guest(instance_id), delivery.body)
            envelope = Envelope.from_json(payload)
            self.guard.check(envelope.id, envelope.sent_at)
        except seal.Refused as exc:
            self.refused.add(exc.reason)
            LOG.warning("refused a message (%s)", exc.reason)
            return None
        except MalformedMessage:
            self.refused.add("malformed")
            LOG.warning("refused a message (malformed)")
            return None
        if not delivery.correlation_id:
            self.on_cast(envelope)
            return None
        with logs.serving(envelope.context.request_id):
            LOG.info("%s", envelope.method)
            reply = self.answer(envelope)
        purpose = seal.reply_from(instance_id, delivery.correlation_id)
        return seal.seal(self._key, purpose, reply.to_json())

    def answer(self, envelope: Envelope) -> Reply:
        """Run the call on the driver (or the agent itself): the contract names the method
        and its arguments."""
        try:
            call = contract.decode_call(envelope.method, envelope.args)
            method = getattr(self.backups if call.by_agent else self.driver, call.method, None)
            if method is None:
                raise contract.NotSupported(f"{self.config.datastore} has no {call.method}.")
            return Reply(result=method(**call.arguments()))
        except contract.GuestError as exc:
            return Reply(error_code=exc.code, error_message=str(exc))
        except Exception as exc:
            LOG.exception("%s failed", envelope.method)
            return Reply(error_code=contract.ErrorCode.FAILED, error_message=type(exc).__name__)

    def _lease_keeper(self) -> LeaseKeeper | None:
        """The lease's keeper, for a datastore that fails over (its driver fences it); None
        for the others, whose heartbeats ask for no lease."""
        if not datastores.get(self.config.datastore).capabilities.failover:
            return None
        driver = cast(FencingDriver, self.driver)
        base_dir = self.config.data_dir
        pid_file, signum = driver.hard_stop(base_dir)
        watchdog = self._watchdog = self._new_watchdog(Path(pid_file), signum)
        return LeaseKeeper(
            fence=lambda: bool(driver.fence_writes(base_dir)),
            resume=lambda: driver.take_writes(base_dir),
            watchdog=watchdog,
        )

    def on_cast(self, envelope: Envelope) -> None:
        """A message that wants no answer (`contract.CASTS`): a heartbeat asked for now, or
        a lease's grant or release (for a guest that keeps one)."""
        cast = contract.CASTS.get(envelope.method)
        if cast is None:
            self.refused.add("malformed")
            return
        try:
            message = cast(**envelope.args)
        except TypeError:
            self.refused.add("malformed")
            return
        if isinstance(message, contract.ReportNow):
            self._beat_now.set()
        elif self.lease is None:
            self.refused.add("malformed")
        elif isinstance(message, contract.LeaseGrant):
            self.lease.granted(str(message.beat), message.lease, bool(message.resume))
        else:
            self.lease.released(str(message.beat), bool(message.resume))

    def keep_lease(self) -> None:
        """Look at the lease often, on a thread of its own: a stuck heartbeat does not
        keep the datastore from being fenced."""
        assert self.lease is not None
        while not self._stopping.wait(CHECK_EVERY):
            try:
                self.lease.check()
            except Exception:
                LOG.exception("the lease check failed")

    def heartbeat(self) -> contract.Heartbeat:
        operating_status, message = self.driver.health()
        return contract.Heartbeat(
            operating_status=operating_status,
            message=message,
            disk_used_bytes=disk.used_bytes(self.config.data_dir),
        )

    def report(self, report: Any) -> bool:
        """Send a report to the conductor, sealed; False if the bus would not take it."""
        publisher = self._reporter()
        envelope = Envelope.new(report.method, asdict(report))
        body = seal.seal(self._key, seal.report_from(self.config.instance_id), envelope.to_json())
        try:
            with self._report_lock:
                publisher.publish(
                    self.config.exchange, topology.REPORTS, body, envelope.id, kind=report.method
                )
        except (BrokerUnavailable, NoConsumerQueue, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
            LOG.warning("%s not sent: %s", report.method, exc)
            return False
        return True

    def _reporter(self) -> Publisher:
        with self._report_lock:
            if self._publisher is None:
                self._publisher = Publisher(self.config.transport_url)
            return self._publisher

    def send_heartbeats(self) -> None:
        """A heartbeat each interval until the agent stops. One that could not be made (its
        health check failed in a way its driver did not foresee) is logged, once until one
        is made again, and the next comes on time: this thread never ends before the agent,
        which would leave the agent answering calls while its instance shows it silent."""
        failing = False
        while not self._stopping.is_set():
            try:
                self.report(self._next_heartbeat())
                failing = False
            except Exception:
                if not failing:
                    LOG.exception("a heartbeat could not be made; trying each interval")
                failing = True
            # A heartbeat asked for meanwhile (or a stop) ends the wait.
            self._beat_now.wait(self.config.heartbeat_interval)
            self._beat_now.clear()
        with self._report_lock:
            if self._publisher is not None:
                self._publisher.close()

    def _next_heartbeat(self) -> contract.Heartbeat:
        beat = self.heartbeat()
        if self.lease is not None:  # named as it goes: a grant counts from here
            beat = replace(beat, beat=self.lease.new_beat(), leased=self.lease.holds)
        return beat

    def run(self) -> None:
        beat = threading.Thread(target=self.send_heartbeats, name="heartbeat", daemon=True)
        beat.start()
        if self.lease is not None:
            threading.Thread(target=self.keep_lease, name="lease", daemon=True).start()
        try:
            self.consumer.run()
        finally:
            beat.join(timeout=5)
            if self._watchdog is not None:
                self._watchdog.close()

    def stop(self) -> None:
        self._stopping.set()
        self._beat_now.set()
        self.consumer.stop()


def _write_pid_file(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(path)


def serve(config: GuestConfig, ready: Callable[[], None] | None = None) -> None:
    """Run the agent in this process until SIGTERM or SIGINT."""
    logs.configure("guest", config.log_format)
    agent = Agent(config, load_driver(config.datastore, config.connection))
    pid_file = Path(config.pid_file)
    _write_pid_file(pid_file)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    signal.signal(signal.SIGINT, lambda *_: agent.stop())
    LOG.info("guest agent for %s started (pid %d)", config.instance_id, os.getpid())
    if ready is not None:
        ready()
    started = time.monotonic()
    try:
        agent.run()
    finally:
        pid_file.unlink(missing_ok=True)
        LOG.info("guest agent stopped after %.0fs", time.monotonic() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="trove-guest", description=__doc__)
    parser.add_argument("--config", type=Path, help="the guest's JSON config")
    parser.add_argument(
        "--detach", action="store_true", help="run in the background (no-op if one already runs)"
    )
    parser.add_argument("--restart", action="store_true", help="with --detach: stop one first")
    parser.add_argument("--log-file", type=Path, help="with --detach: where output goes")
    parser.add_argument("--stop", action="store_true", help="stop the agent of --pid-file")
    parser.add_argument("--pid-file", type=Path, help="with --stop: the agent's pid file")
    args = parser.parse_args(argv)
    if args.stop:
        if args.pid_file is None:
            parser.error("--stop needs --pid-file")
        print("stopped" if daemon.stop(args.pid_file) else "not running")
        return
    if args.config is None:
        parser.error("--config is required")
    config = GuestConfig.load(args.config)
    if not args.detach:
        serve(config)
        return
    pid_file = Path(config.pid_file)
    if args.restart:
        daemon.stop(pid_file)
    elif (pid := daemon.running_pid(pid_file)) is not None:
        print(f"already running (pid {pid})")
        return
    log_file = args.log_file or pid_file.with_suffix(".log")
    pid = daemon.detach(
        log_file, lambda ready: serve(config, ready), pid_file, log_format=config.log_format
    )
    print(f"started (pid {pid})")


if __name__ == "__main__":
    main()
