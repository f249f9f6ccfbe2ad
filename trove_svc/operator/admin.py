"""The operator's commands, on the service's own host: tokens and the audit trail."""

from __future__ import annotations

import argparse
import sys

from trove_svc.domain import audit, errors
from trove_svc.operator import task_follow
from trove_svc.process.settings import Settings
from trove_svc.security import tokens
from trove_svc.store.models import Task


def token_create(settings: Settings, args: argparse.Namespace) -> None:
    try:
        expires_in = tokens.parse_duration(args.expires_in) if args.expires_in else None
    except errors.BadRequest as exc:
        sys.exit(f"trove-svc: {exc.message}")
    user = args.user or args.project
    print(tokens.issue(args.project, user, args.admin, settings.clock(), expires_in))


def token_list(settings: Settings, args: argparse.Namespace) -> None:
    columns = ("id", "project", "user", "admin", "created", "last_used", "expires", "revoked")
    print(
        f"{'ID':12}  {'PROJECT':16}  {'USER':16}  {'ADMIN':5}  {'CREATED':19}  "
        f"{'LAST USED':19}  {'EXPIRES':19}  REVOKED"
    )
    for row in tokens.listing(args.project):
        cells = [str(row[c]) if row[c] is not None else "-" for c in columns]
        cells[3] = "yes" if row["admin"] else "no"
        print(
            f"{cells[0]:12}  {cells[1]:16.16}  {cells[2]:16.16}  {cells[3]:5}  {cells[4]:19}  "
            f"{cells[5]:19}  {cells[6]:19}  {cells[7]}"
        )


def token_revoke(settings: Settings, args: argparse.Namespace) -> None:
    try:
        revoked = tokens.revoke(args.token_id, settings.clock())
    except errors.BadRequest as exc:
        sys.exit(f"trove-svc: {exc.message}")
    if not revoked:
        sys.exit(f"trove-svc: no live token {args.token_id}")
    print(f"revoked {args.token_id}")


def task_list(settings: Settings, args: argparse.Namespace) -> None:
    print(f"{'TASK':36}  {'ACTION':16}  {'STATE':9}  {'RC':>3}  {'SECONDS':>7}  {'STARTED':19}  BY")
    for row in audit.task_views(args.instance):
        seconds = f"{row['duration']:.1f}" if row["duration"] is not None else "-"
        rc = row["rc"] if row["rc"] is not None else "-"
        print(
            f"{row['id']:36}  {row['action']:16}  {row['state']:9}  {rc:>3}  {seconds:>7}  "
            f"{row['started'] or '-':19}  {row['requested_by'] or '-'}"
        )


def task_show(settings: Settings, args: argparse.Namespace) -> None:
    task = Task.get_or_none(Task.id == args.task)
    if task is None:
        sys.exit(f"trove-svc: no task {args.task}")
    detail = audit.task_detail(task)
    for key in (
        "id",
        "action",
        "state",
        "requested_by",
        "requested_by_project",
        "started",
        "finished",
        "duration",
        "runs",
        "rc",
        "current_step",
        "failed_step",
        "message",
    ):
        print(f"{key:20} {detail[key] if detail[key] is not None else '-'}")
    print()
    for step in detail["steps"]:
        seconds = f"{step['duration']:.2f}" if step["duration"] is not None else "-"
        name = f"{step['role']} : {step['task']}" if step["role"] else step["task"]
        print(f"{step['outcome']:9} {seconds:>6}s  {name}")
        if step["message"]:
            print(f"{'':18}{step['message']}")


def task_watch(settings: Settings, args: argparse.Namespace) -> None:
    code = task_follow.follow(
        args.instance, settings.runs_dir, sys.stdout, sys.stdout.isatty(), args.timeout
    )
    sys.exit(code)


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="issue a token (printed once)")
    create.add_argument("--project", required=True)
    create.add_argument("--user", help="user name recorded with the token")
    create.add_argument("--admin", action="store_true", help="grant the admin role")
    create.add_argument("--expires-in", help="a lifetime: 3600, 90m, 12h or 30d")
    create.set_defaults(command_func=token_create)
    listing = token_sub.add_parser("list", help="every token: who, when, expiry (never the token)")
    listing.add_argument("--project", help="only this project's")
    listing.set_defaults(command_func=token_list)
    revoke = token_sub.add_parser("revoke", help="revoke a token by the id `token list` shows")
    revoke.add_argument("token_id")
    revoke.set_defaults(command_func=token_revoke)

    task = sub.add_parser("task", help="the audit trail: tasks run on instances")
    task_sub = task.add_subparsers(dest="task_command", required=True)
    tasks_of = task_sub.add_parser("list", help="the tasks run on an instance")
    tasks_of.add_argument("--instance", required=True, help="instance id")
    tasks_of.set_defaults(command_func=task_list)
    show = task_sub.add_parser("show", help="one task with its Ansible steps")
    show.add_argument("task", help="task id")
    show.set_defaults(command_func=task_show)
    follow = task_sub.add_parser("watch", help="follow an instance's running task")
    follow.add_argument("instance", help="instance id")
    follow.add_argument("--timeout", type=float, default=3600, help="give up after (s)")
    follow.set_defaults(command_func=task_watch)
