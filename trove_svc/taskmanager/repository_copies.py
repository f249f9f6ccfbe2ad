"""Backup repositories of instances on other hosts (pool hosts), and the control plane's
copies of them.

A guest makes its backups where it runs: on another host, into a repository in its
instance's directory there (provisioning.host_repository). The control plane keeps a copy
of that repository in its own (the repository host's, this machine's), which is what
checks, S3 copies and restores read, and what outlives the instance. The copy is brought up
to date (`collect`) once a backup is made, before a restore to a time (after the source
archived its logs), and before the instance is deleted; a restore onto another host gets
the repositories it reads copied to that host (`restore_copies`), and removed once it is
restored. Copies go over the pool's own SSH connection (rsync, through the `backup_copy`
role); no instance reaches another host.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from trove_svc import compute
from trove_svc.domain import backups
from trove_svc.process.settings import Settings
from trove_svc.store.models import Instance
from trove_svc.taskmanager import provisioning
from trove_svc.taskmanager.deps import Claim, FlowDeps
from trove_svc.taskmanager.engine import lost_if_canceled
from trove_svc.taskmanager.runs import run_playbook

LOG = logging.getLogger(__name__)

# Where a restore onto a pool host reads its copies: a directory of root's beside the
# host's instances, which no instance's account can write in.
RESTORE_COPIES = ".restores"


class NotCollected(Exception):
    """The instance's repository could not be copied from its host; the message says why."""


def is_copied(deps: FlowDeps, instance: Instance) -> bool:
    """Whether the instance's backups are made on another host, and copied from there."""
    place = compute.place_of(deps.settings, instance)
    return place.remote and compute.reaches("Backups", place.provider)


def collect(deps: FlowDeps, claim: Claim, instance: Instance) -> None:
    """Bring the control plane's copy of the instance's repository up to date from its
    host (nothing to do for an instance on this machine, whose guest makes its backups in
    the control plane's repository itself)."""
    if not is_copied(deps, instance):
        return
    copy = backups.repository(deps.settings.backups_dir, instance.id)
    try:
        if os.path.islink(copy):
            raise NotCollected("The control plane's repository of the instance is a link.")
        copy.mkdir(mode=0o750, exist_ok=True)
    except OSError as exc:
        raise NotCollected(
            f"The control plane's repository of the instance cannot be made: {exc.strerror}."
        ) from exc
    result = run_playbook(
        deps,
        claim,
        "backup_collect.yml",
        instance,
        collect_vars(deps.settings, instance),
        suffix=f"collect-{deps.settings.new_id()[:8]}",
    )
    lost_if_canceled(result)
    if not result.ok:
        LOG.error("instance %s: collect failed: %s", instance.id, result.describe_failure())
        raise NotCollected(
            "Its backups could not be copied from its host "
            f"(task {claim.task.id}, run {result.artifact_dir.rsplit('/', 1)[-1]})."
        )


def collect_vars(settings: Settings, instance: Instance) -> dict[str, Any]:
    """What the run that collects the instance's repository is told."""
    return {
        "backup_copy_host_repository": str(provisioning.host_repository(settings, instance)),
        "backup_copy_repository": str(backups.repository(settings.backups_dir, instance.id)),
        "backup_copy_os_user": provisioning.os_user(settings, instance),
    }


def restore_copies(
    deps: FlowDeps, target: Instance, repositories: list[Path]
) -> tuple[dict[Path, Path], list[dict[str, str]]]:
    """Where a restore onto `target` reads each of `repositories` (the control plane's, or
    copies staged from a bucket): the same path on this machine; on another host, a copy
    of each that the create's run makes there (RESTORE_COPIES), and those copies."""
    place = compute.place_of(deps.settings, target)
    if not place.remote:
        return {repository: repository for repository in repositories}, []
    copies_dir = place.instance_dir.parent / RESTORE_COPIES
    on_host = {
        repository: copies_dir / f"{target.id}-{n}"
        for n, repository in enumerate(dict.fromkeys(repositories))
    }
    copies = [{"control": str(here), "host": str(there)} for here, there in on_host.items()]
    return on_host, copies


def restore_copy_vars(copies: list[dict[str, str]]) -> dict[str, Any]:
    """The create's run variables for `copies` (none: the restore reads this machine's)."""
    return {"backup_copy_restores": copies} if copies else {}
