"""Started as root, the deployment's state directory is handed to the service's account:
what the service keeps there becomes the account's, the instances' own directories stay
theirs, and no link is followed on the way (as root, a followed link would give away
whatever it points to)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from trove_svc.process.settings import Settings
from trove_svc.security import service_account


def test_the_state_directory_is_handed_over_without_following_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("root's")
    state = tmp_path / "state"
    settings = Settings(state_dir=state)
    for path in ("runs/t-1/artifacts", "instances/i-1/postgresql", "backups/i-1", "secrets"):
        (state / path).mkdir(parents=True)
    (state / "trove-svc.db").write_text("")
    (state / "runs" / "t-1" / "artifacts" / "stdout").write_text("")
    (state / "runs" / "t-1" / "planted").symlink_to(outside)
    (state / "instances" / "i-1" / "postgresql" / "postgresql.log").write_text("")
    account = pwd.getpwnam("nobody")

    service_account.hand_over(settings, account)

    def owner(path: Path) -> int:
        return os.lstat(path).st_uid

    for kept in ("", "trove-svc.db", "runs", "runs/t-1/artifacts/stdout", "runs/t-1/planted"):
        assert owner(state / kept) == account.pw_uid, kept
    assert owner(state / "instances") == owner(state / "backups") == account.pw_uid
    for instances_own in (
        "instances/i-1",
        "instances/i-1/postgresql/postgresql.log",
        "backups/i-1",
    ):
        assert owner(state / instances_own) == 0, instances_own
    assert owner(outside) == 0  # the link changed hands, not what it points to
