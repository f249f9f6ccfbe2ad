"""The guest agent's process: answer calls on guestagent.<id>, send heartbeats."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trove_guest import daemon, disk
from trove_guest.config import GuestConfig
from trove_guest.drivers import DatastoreDriver, NotFound, NotSupported, load_driver
from trove_wire.amqp import CONNECTION_ERRORS, BrokerUnavailable, Consumer, Publisher
from trove_wire.envelope import Envelope, Reply

LOG = logging.getLogger("trove_guest")


class Agent:
    def __init__(self, config: GuestConfig, driver: DatastoreDriver) -> None:
        self.config = config
        self.driver = driver
        self._stopping = threading.Event()
        d = driver
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "list_databases": lambda _a: d.list_databases(),
            "create_databases": lambda a: d.create_databases(a["databases"]),
            "delete_database": lambda a: d.delete_database(a["name"]),
            "list_users": lambda _a: d.list_users(),
            "get_user": lambda a: d.get_user(a["name"], a.get("host")),
            "create_users": lambda a: d.create_users(a["users"]),
            "delete_user": lambda a: d.delete_user(a["name"], a.get("host")),
            "change_passwords": lambda a: d.change_passwords(a["users"]),
            "update_user": lambda a: d.update_user(a["name"], a.get("host"), a["attributes"]),
            "list_access": lambda a: d.list_access(a["name"], a.get("host")),
            "grant_access": lambda a: d.grant_access(a["name"], a.get("host"), a["databases"]),
            "revoke_access": lambda a: d.revoke_access(a["name"], a.get("host"), a["database"]),
            "enable_root": lambda a: d.enable_root(a["password"]),
            "is_root_enabled": lambda _a: d.is_root_enabled(),
            "disable_root": lambda _a: d.disable_root(),
        }
        self.consumer = Consumer(config.transport_url, config.queue, self.handle, workers=2)

    def handle(self, envelope: Envelope) -> Reply:
        method = self._methods.get(envelope.method)
        if method is None:
            return Reply(error_type="UnknownMethod", error_message=envelope.method)
        try:
            return Reply(result=method(envelope.args))
        except (NotSupported, NotFound) as exc:
            return Reply(error_type=type(exc).__name__, error_message=str(exc))

    def heartbeat_args(self) -> dict[str, Any]:
        status, message = self.driver.health()
        return {
            "instance_id": self.config.instance_id,
            "operating_status": status,
            "message": message,
            "disk_used_bytes": disk.used_bytes(self.config.data_dir),
        }

    def send_heartbeats(self) -> None:
        publisher = Publisher(self.config.transport_url)
        while not self._stopping.is_set():
            envelope = Envelope.new("heartbeat", self.heartbeat_args())
            try:
                publisher.cast(self.config.conductor_queue, envelope)
            except (BrokerUnavailable, *CONNECTION_ERRORS) as exc:  # type: ignore[misc]
                LOG.warning("heartbeat not sent: %s", exc)
            self._stopping.wait(self.config.heartbeat_interval)
        publisher.close()

    def run(self) -> None:
        beat = threading.Thread(target=self.send_heartbeats, name="heartbeat", daemon=True)
        beat.start()
        self.consumer.run()
        beat.join(timeout=5)

    def stop(self) -> None:
        self._stopping.set()
        self.consumer.stop()


def _write_pid_file(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{os.getpid()}\n")
    tmp.replace(path)


def serve(config: GuestConfig, ready: Callable[[], None] | None = None) -> None:
    """Run the agent in this process until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("pika").setLevel(logging.WARNING)
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
    pid = daemon.detach(log_file, lambda ready: serve(config, ready))
    print(f"started (pid {pid})")


if __name__ == "__main__":
    main()
