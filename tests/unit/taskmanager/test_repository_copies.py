"""Where a restore reads the repositories of its backups: on this machine, where they are;
on a pool host, copies the create's run makes there, in root's directory beside the
instances' (one per repository, however many backups of the chain are in it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from trove_svc.process.settings import Settings
from trove_svc.store.models import Instance
from trove_svc.taskmanager import repository_copies
from trove_svc.taskmanager.deps import FlowDeps

POOL = """
all:
  hosts:
    h1: {ansible_host: 192.0.2.10, ansible_user: root, trove_instances_dir: /srv/trove}
"""


def _deps(tmp_path: Path) -> FlowDeps:
    pool = tmp_path / "pool.yml"
    pool.write_text(POOL)
    settings = Settings(state_dir=tmp_path / "state", host_pool=str(pool))
    none = cast(Any, None)
    return FlowDeps(settings, none, none, none, none, none)


def test_a_restore_on_this_machine_reads_the_repositories_where_they_are(tmp_path: Path) -> None:
    deps = _deps(tmp_path)
    kept = deps.settings.backups_dir / "i-1"
    read_from, copies = repository_copies.restore_copies(
        deps, Instance(id="i-2", provider="local"), [kept, kept]
    )
    assert read_from == {kept: kept}
    assert copies == [] and repository_copies.restore_copy_vars(copies) == {}


def test_a_restore_on_a_pool_host_reads_copies_in_its_own_directory(tmp_path: Path) -> None:
    deps = _deps(tmp_path)
    kept = deps.settings.backups_dir / "i-1"
    staged = deps.settings.state_dir / "staging" / "t-1" / "i-1"
    target = Instance(id="i-2", provider="ssh", server="h1")
    read_from, copies = repository_copies.restore_copies(deps, target, [kept, staged, kept])
    assert read_from == {
        kept: Path("/srv/trove/.restores/i-2-0"),
        staged: Path("/srv/trove/.restores/i-2-1"),
    }
    assert repository_copies.restore_copy_vars(copies) == {
        "backup_copy_restores": [
            {"control": str(kept), "host": "/srv/trove/.restores/i-2-0"},
            {"control": str(staged), "host": "/srv/trove/.restores/i-2-1"},
        ]
    }


def test_a_pool_instances_repository_is_copied_from_its_directory_there(tmp_path: Path) -> None:
    deps = _deps(tmp_path)
    instance = Instance(id="i-1", provider="ssh", server="h1")
    assert repository_copies.is_copied(deps, instance)
    assert repository_copies.collect_vars(deps.settings, instance) == {
        "backup_copy_host_repository": "/srv/trove/i-1/backups",
        "backup_copy_repository": str(deps.settings.backups_dir / "i-1"),
        "backup_copy_os_user": "trove-i1",
    }
    assert not repository_copies.is_copied(deps, Instance(id="i-2", provider="local"))
