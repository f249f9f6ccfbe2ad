"""The `trove-svc` command: the all-in-one, each part alone, and token issue."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from trove_svc import catalog, errors, metrics, setup, tokens
from trove_svc.runtime import Runtime
from trove_svc.settings import ENV_PREFIX, Settings, environment_for
from trove_svc.store.db import open_store

LOG = logging.getLogger("trove_svc")
PARTS = ("api", "taskmanager", "conductor")


def _settings(args: argparse.Namespace) -> Settings:
    """Build the settings once, then drop them from the environment: child processes
    (ansible-runner records the whole environment in its artifacts) must not see them."""
    settings = Settings.from_env()
    for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        del os.environ[key]
    overrides: dict[str, Any] = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    return settings.with_overrides(**overrides) if overrides else settings


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("pika").setLevel(logging.WARNING)


def _prepare(settings: Settings) -> None:
    # Everything the service writes is its own unless a role says otherwise.
    os.umask(0o077)
    setup.prepare_state_dir(settings)
    open_store(settings.effective_database_url)
    catalog.ensure_defaults(catalog.host_datastores())


def _runtime(settings: Settings) -> Runtime:
    try:
        return Runtime.load(settings)
    except ValueError as exc:
        sys.exit(f"trove-svc: {exc}")


def cmd_setup(args: argparse.Namespace) -> None:
    settings = _settings(args)
    _logging(settings)
    _prepare(settings)
    try:
        setup.run(settings, args.broker_admin_url)
    except errors.TroveSvcError as exc:
        sys.exit(f"trove-svc: set-up failed: {exc.message}")
    print(f"trove-svc is set up (state in {settings.state_dir}, vhost {settings.vhost}).")


def cmd_token_create(args: argparse.Namespace) -> None:
    settings = _settings(args)
    _prepare(settings)
    print(tokens.issue(args.project, args.user or args.project, args.admin, settings.clock()))


def cmd_task_list(args: argparse.Namespace) -> None:
    from trove_svc import audit
    from trove_svc.store.models import Task

    settings = _settings(args)
    open_store(settings.effective_database_url)
    query = Task.select().where(Task.instance_id == args.instance).order_by(Task.created_at)
    print(f"{'TASK':36}  {'ACTION':14}  {'STATE':9}  {'RC':>3}  {'SECONDS':>7}  STARTED")
    for task in query:
        row = audit.task_view(task)
        seconds = f"{row['duration']:.1f}" if row["duration"] is not None else "-"
        print(
            f"{row['id']:36}  {row['action']:14}  {row['state']:9}  "
            f"{row['rc'] if row['rc'] is not None else '-':>3}  {seconds:>7}  "
            f"{row['started'] or '-'}"
        )


def cmd_task_show(args: argparse.Namespace) -> None:
    from trove_svc import audit
    from trove_svc.store.models import Task

    settings = _settings(args)
    open_store(settings.effective_database_url)
    task = Task.get_or_none(Task.id == args.task)
    if task is None:
        sys.exit(f"trove-svc: no task {args.task}")
    detail = audit.task_detail(task)
    for key in (
        "id",
        "action",
        "state",
        "requested_by",
        "started",
        "finished",
        "duration",
        "rc",
        "failed_step",
        "message",
    ):
        print(f"{key:13} {detail[key] if detail[key] is not None else '-'}")
    print()
    for step in detail["steps"]:
        seconds = f"{step['duration']:.2f}" if step["duration"] is not None else "-"
        name = f"{step['role']} : {step['task']}" if step["role"] else step["task"]
        print(f"{step['outcome']:9} {seconds:>6}s  {name}")
        if step["message"]:
            print(f"{'':18}{step['message']}")


def cmd_api(args: argparse.Namespace) -> None:
    from gunicorn.app.base import BaseApplication

    from trove_svc.api.app import create_app

    settings = _settings(args)
    _logging(settings)
    _prepare(settings)
    metrics.configure(settings.metrics_dir)
    runtime = _runtime(settings)

    class Api(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", f"{settings.host}:{settings.port}")
            self.cfg.set("workers", settings.api_workers)
            self.cfg.set("timeout", int(settings.call_timeout * 3))
            self.cfg.set("accesslog", "-")
            self.cfg.set("proc_name", "trove-svc-api")
            self.cfg.set("control_socket_disable", True)
            self.cfg.set(
                "child_exit", lambda _server, worker: metrics.mark_process_dead(worker.pid)
            )

        def load(self) -> Any:
            open_store(settings.effective_database_url)
            return create_app(settings, runtime.bus(), runtime.keys)

    Api().run()


def _run_until_signal(service: Any) -> None:
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    service.run()


def cmd_taskmanager(args: argparse.Namespace) -> None:
    from trove_svc.taskmanager.service import TaskManager

    settings = _settings(args)
    _logging(settings)
    _prepare(settings)
    metrics.configure(settings.metrics_dir)
    _run_until_signal(TaskManager(_runtime(settings).flow_deps()))


def cmd_conductor(args: argparse.Namespace) -> None:
    from trove_svc.conductor.service import Conductor

    settings = _settings(args)
    _logging(settings)
    _prepare(settings)
    metrics.configure(settings.metrics_dir)
    runtime = _runtime(settings)
    _run_until_signal(Conductor(settings, runtime.url, runtime.keyring))


def cmd_up(args: argparse.Namespace) -> None:
    settings = _settings(args)
    _logging(settings)
    _prepare(settings)
    try:
        setup.run(settings)
    except errors.TroveSvcError as exc:
        sys.exit(
            f"trove-svc: {exc.message} Run `trove-svc setup --broker-admin-url "
            "http://USER:PASSWORD@HOST:15672` with a RabbitMQ administrator's account."
        )
    metrics.configure(settings.metrics_dir, fresh=True)
    env = {**os.environ, **environment_for(settings)}
    children = [
        subprocess.Popen([sys.executable, "-m", "trove_svc.cli", part], env=env) for part in PARTS
    ]
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"trove-svc is up on {url} (state in {settings.state_dir}).\n"
        f"Issue a token:  trove-svc token create --project demo\n"
        f"Then see the README's quick start. Ctrl-C stops the service, not the instances.",
        flush=True,
    )
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
    setup_parser.set_defaults(func=cmd_setup)
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
    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="issue a token (printed once)")
    create.add_argument("--project", required=True)
    create.add_argument("--user", help="user name recorded with the token")
    create.add_argument("--admin", action="store_true", help="grant the admin role")
    create.set_defaults(func=cmd_token_create)
    task = sub.add_parser("task", help="the audit trail: tasks run on instances")
    task_sub = task.add_subparsers(dest="task_command", required=True)
    listing = task_sub.add_parser("list", help="the tasks run on an instance")
    listing.add_argument("--instance", required=True, help="instance id")
    listing.set_defaults(func=cmd_task_list)
    show = task_sub.add_parser("show", help="one task with its Ansible steps")
    show.add_argument("task", help="task id")
    show.set_defaults(func=cmd_task_show)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
