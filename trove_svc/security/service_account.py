"""The service's own unprivileged account: what the API, task manager and conductor run as
when trove-svc is started as root.

Started as root, an entry point makes the account (once), hands it the state directory,
and gives up root for it before it opens the store or listens to anyone. Root is then
reached only through Ansible's become (sudo), in the steps that need it: instances' own
accounts, their directories, starting a datastore as its account. A sudoers rule lets the
account become root without a password; only the task manager's Ansible runs use it.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from trove_svc.domain import errors
from trove_svc.process.settings import Settings

LOG = logging.getLogger(__name__)

SUDOERS_DIR = Path("/etc/sudoers.d")
# The state directory's entries that hold instances' own directories: the entry itself
# is the service's, what is below it is each instance's.
_INSTANCES_OWN = ("instances", "backups")


def ensure(settings: Settings) -> pwd.struct_passwd:
    """The service's account, made if missing, with its sudoers rule where instances have
    accounts of their own (making them takes root). As root only."""
    name = settings.service_user
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        useradd = ["useradd", "--system", "--user-group", "--no-create-home"]
        made = subprocess.run(
            [*useradd, "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise errors.ServiceUnavailable(
                f"Could not make the service's account {name}: {made.stderr.strip()[:300]}"
            ) from None
        LOG.info("made the service's account %s", name)
        account = pwd.getpwnam(name)
    if settings.instance_accounts:
        _ensure_sudoers(name)
    return account


def _ensure_sudoers(name: str) -> None:
    rule = (
        f"# trove-svc: the service's account reaches root through Ansible's become only.\n"
        f"Defaults:{name} !requiretty\n"
        f"{name} ALL=(ALL:ALL) NOPASSWD: ALL\n"
    )
    path = SUDOERS_DIR / f"trove-svc-{name}"
    if path.exists() and path.read_text() == rule:
        return
    if shutil.which("visudo") is None or shutil.which("sudo") is None:
        raise errors.ServiceUnavailable(
            "sudo is not installed: the service's account needs it to build instances with "
            "accounts of their own (scripts/bootstrap.sh installs it)."
        )
    SUDOERS_DIR.mkdir(mode=0o750, exist_ok=True)
    # Checked by sudo's own parser before it is put where sudo reads it.
    with tempfile.NamedTemporaryFile("w", dir=SUDOERS_DIR, prefix=".", delete=False) as tmp:
        tmp.write(rule)
    checked = subprocess.run(["visudo", "-cqf", tmp.name], capture_output=True, check=False)
    if checked.returncode != 0:
        os.unlink(tmp.name)
        raise errors.ServiceUnavailable(f"sudo refused the rule for {name}.")
    os.chmod(tmp.name, 0o440)
    os.replace(tmp.name, path)


def hand_over(settings: Settings, account: pwd.struct_passwd) -> None:
    """The state directory and what the service keeps there (and the backup repositories'
    directory) become the account's; the instances' own directories below `instances/` and
    the backups' stay theirs. Links are never followed."""
    uid, gid = account.pw_uid, account.pw_gid
    os.lchown(settings.state_dir, uid, gid)
    for entry in settings.state_dir.iterdir():
        if entry.name in _INSTANCES_OWN or entry.lstat().st_uid == uid:
            os.lchown(entry, uid, gid)
            continue
        os.lchown(entry, uid, gid)
        if entry.is_dir() and not entry.is_symlink():
            for root, dirs, files in os.walk(entry, followlinks=False):
                for name in dirs + files:
                    os.lchown(os.path.join(root, name), uid, gid)
    # The backup repositories' directory, where it is elsewhere (TROVE_SVC_BACKUP_REPOSITORIES).
    os.lchown(settings.backups_dir, uid, gid)


def become(settings: Settings) -> None:
    """Give up root for the service's account, for good (no saved root to come back to)."""
    account = pwd.getpwnam(settings.service_user)
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    # Ansible keeps its files under HOME (~/.ansible): the state directory is the
    # account's own place.
    os.environ.update(HOME=str(settings.state_dir), USER=account.pw_name, LOGNAME=account.pw_name)
