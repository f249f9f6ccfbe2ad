"""The `trove-svc` command: the set-up, the all-in-one, each part alone, and the operator's
commands (`trove_svc.operator.admin`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trove_svc.bus.broker import named_account
from trove_svc.domain import errors
from trove_svc.operator import admin, join, setup
from trove_svc.process import metrics, startup
from trove_svc.process.settings import (
    Settings,
    environment_for,
)
from trove_svc.store.db import open_store

LOG = logging.getLogger("trove_svc")
PARTS = ("api", "taskmanager", "conductor")


def _settings(args: argparse.Namespace, part: str) -> Settings:
    """The settings, as every entry point loads them (trove_svc.process.startup), with the
    command line's host and port."""
    settings = startup.load_settings(part)
    overrides: dict[str, Any] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return settings.with_overrides(**overrides) if overrides else settings


def cmd_setup(args: argparse.Namespace) -> None:
    if args.join:
        # Kept in the state directory first, so the settings below read the shared ones.
        _or_exit(lambda: join.adopt(Settings.from_env(), Path(args.join)))
    settings = _settings(args, "setup")
    startup.prepare(settings)
    try:
        setup.run(settings, args.broker_admin_url, args.retire_stock_guest)
    except errors.TroveSvcError as exc:
        sys.exit(f"trove-svc: set-up failed: {exc.message}")
    print(f"trove-svc is set up (state in {settings.state_dir}, vhost {settings.vhost}).")


def cmd_join_file(args: argparse.Namespace) -> None:
    """Written as the caller (root, or the service's account), before any store is opened."""
    settings = _settings(args, "setup")
    _or_exit(lambda: join.export(settings, Path(args.output)))
    print(f"wrote {args.output}: give it once to `trove-svc setup --join` on the new node.")


def _or_exit(step: Callable[[], None]) -> None:
    try:
        step()
    except errors.TroveSvcError as exc:
        sys.exit(f"trove-svc: {exc.message}")


def cmd_operator(args: argparse.Namespace) -> None:
    """Token and task commands: they read and write the store, on the service's host."""
    settings = _settings(args, "cli")
    startup.prepare(settings)
    args.command_func(settings, args)


def cmd_api(args: argparse.Namespace) -> None:
    from gunicorn.app.base import BaseApplication

    from trove_svc.api.app import create_app
    from trove_svc.api.gunicorn_logs import GunicornLogs

    settings = _settings(args, "api")
    startup.prepare(settings)
    metrics.configure(settings.metrics_dir)
    runtime = startup.runtime(settings)

    class Api(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            # gunicorn took its user and group when it was imported, which may have been
            # before this process gave root up: its workers are this process's account.
            self.cfg.set("user", os.geteuid())
            self.cfg.set("group", os.getegid())
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", settings.api_workers)
            # A request may wait for a guest, or for a configuration group's tasks.
            request_wait = max(settings.call_timeout, settings.configuration_wait)
            self.cfg.set("timeout", int(request_wait + settings.call_timeout * 2))
            self.cfg.set("accesslog", "-")
            self.cfg.set("logger_class", GunicornLogs)
            self.cfg.set("proc_name", "trove-svc-api")
            self.cfg.set("control_socket_disable", True)
            self.cfg.set(
                "child_exit", lambda _server, worker: metrics.mark_process_dead(worker.pid)
            )

        def load(self) -> Any:
            open_store(settings.effective_database_url)
            return create_app(settings, runtime.bus(), runtime.keys)

    Api().run()


def _run_until_signal(service: Any, settings: Settings, metrics_port: int) -> None:
    if metrics_port:
        metrics.serve(metrics_port, settings.host)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    service.run()


def cmd_taskmanager(args: argparse.Namespace) -> None:
    from trove_svc.taskmanager.service import TaskManager

    settings = _settings(args, "taskmanager")
    startup.prepare(settings)
    metrics.configure(settings.metrics_dir)
    deps = startup.runtime(settings).flow_deps()
    _run_until_signal(TaskManager(deps), settings, settings.taskmanager_metrics_port)


def cmd_conductor(args: argparse.Namespace) -> None:
    from trove_svc.conductor.service import Conductor

    settings = _settings(args, "conductor")
    startup.prepare(settings)
    metrics.configure(settings.metrics_dir)
    runtime = startup.runtime(settings)
    conductor = Conductor(settings, runtime.url, runtime.keyring, runtime.admin())
    _run_until_signal(conductor, settings, settings.conductor_metrics_port)


def cmd_up(args: argparse.Namespace) -> None:
    settings = _settings(args, "up")
    startup.prepare(settings)
    try:
        setup.run(settings)
    except errors.TroveSvcError as exc:
        if named_account(settings.transport_url) is not None:
            sys.exit(f"trove-svc: {exc.message}")
        sys.exit(
            f"trove-svc: {exc.message} Run `trove-svc setup --broker-admin-url "
            "http://USER:PASSWORD@HOST:15672` with a RabbitMQ administrator's account."
        )
    metrics.configure(settings.metrics_dir, fresh=True)
    env = {**os.environ, **environment_for(settings)}
    children = [
        subprocess.Popen([sys.executable, "-m", "trove_svc.operator.cli", part], env=env)
        for part in PARTS
    ]
    banner = (
        f"trove-svc is up on http://{settings.host}:{settings.port} "
        f"(state in {settings.state_dir}).\n"
        "Issue a token:  trove-svc token create --project demo\n"
        "Then see the README's quick start. Ctrl-C stops the service, not the instances."
    )
    if settings.log_format == "json":
        LOG.info("%s", banner.replace("\n", " "))
    else:
        print(banner, flush=True)
    _supervise(children)


def _supervise(children: list[subprocess.Popen[bytes]]) -> None:
    """Wait for a signal or a part's exit; then stop every part."""
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping:
            exited = [c for c in children if c.poll() is not None]
            if exited:
                LOG.error("a part of the service exited (rc %s); stopping", exited[0].returncode)
                break
            time.sleep(0.5)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    if not stopping:
        sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trove-svc", description="Database-as-a-Service.")
    sub = parser.add_subparsers(dest="command", required=True)
    setup_parser = sub.add_parser("setup", help="make what a deployment needs (safe to repeat)")
    setup_parser.add_argument(
        "--broker-admin-url",
        help="a RabbitMQ administrator, used once: http://USER:PASSWORD@HOST:15672 "
        "(default: the broker's stock guest account on the management port)",
    )
    setup_parser.add_argument(
        "--retire-stock-guest",
        action="store_true",
        help="remove the broker's stock guest account (guest/guest), with which any local "
        "process could administer the broker; only when nothing else uses it",
    )
    setup_parser.add_argument(
        "--join",
        metavar="FILE",
        help="join an existing deployment: FILE is what `trove-svc join-file` wrote on one "
        "of its nodes (service key, broker account, store URL), kept in this node's state "
        "directory",
    )
    setup_parser.set_defaults(func=cmd_setup)
    join_parser = sub.add_parser(
        "join-file", help="write what a new control-plane node needs to join this deployment"
    )
    join_parser.add_argument("output", help="the file to write (0600: it holds secrets)")
    join_parser.set_defaults(func=cmd_join_file)
    for name, func, text in (
        ("up", cmd_up, "run the all-in-one: API, task manager and conductor"),
        ("api", cmd_api, "run the API under gunicorn"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port to listen on (default 8779)")
        p.set_defaults(func=func)
    sub.add_parser("taskmanager", help="run a task manager").set_defaults(func=cmd_taskmanager)
    sub.add_parser("conductor", help="run a conductor").set_defaults(func=cmd_conductor)
    admin.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if getattr(args, "command_func", None) is not None:
        cmd_operator(args)
    else:
        args.func(args)


if __name__ == "__main__":
    main()
