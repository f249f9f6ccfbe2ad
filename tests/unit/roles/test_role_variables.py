"""The contract between the control plane and the roles: every variable a playbook is
given for a role is one that role declares (`meta/argument_specs.yml`), and every option
an entry point requires is given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trove_svc import compute
from trove_svc.domain import catalog
from trove_svc.process.settings import PROJECT_ROOT, Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Flavor, Instance
from trove_svc.taskmanager import provisioning, repository_copies
from trove_wire import datastores

ROLES = PROJECT_ROOT / "roles"
DATASTORES = sorted(datastores.REGISTRY)
PROVIDERS = ["local", "ssh", "openstack"]
# Which entry point of which role each playbook runs ("{datastore}" is the instance's,
# "{provider}" its compute provider's).
PLAYBOOKS = {
    "instance_create.yml": [
        ("compute_{provider}", "main"),
        ("guest_agent", "install"),
        ("{datastore}", "main"),
        ("guest_agent", "main"),
    ],
    "instance_delete.yml": [
        ("guest_agent", "stop"),
        ("{datastore}", "stop"),
        ("compute_{provider}", "teardown"),
    ],
    "instance_restart.yml": [("{datastore}", "restart"), ("guest_agent", "service")],
    "instance_reconfigure.yml": [("{datastore}", "reconfigure")],
    "instance_configure.yml": [("{datastore}", "configuration")],
    "instance_replication.yml": [("{datastore}", "replication"), ("guest_agent", "service")],
    "instance_peers.yml": [("{datastore}", "peers")],
    "backup_collect.yml": [("backup_copy", "collect")],
}


def _runs_on(playbook: str, datastore: str) -> bool:
    """Whether the flows run `playbook` on instances of `datastore`: host rules for a
    set's peers only where a source admits its replicas by address."""
    return playbook != "instance_peers.yml" or datastores.get(datastore).admits_replicas_by_address


RUNS = [(p, d) for p in sorted(PLAYBOOKS) for d in DATASTORES if _runs_on(p, d)]


def specs(role: str) -> dict[str, dict[str, Any]]:
    path = ROLES / role / "meta" / "argument_specs.yml"
    loaded: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["argument_specs"]
    return loaded


POOL = """
all:
  hosts:
    h1: {ansible_host: 192.0.2.10, ansible_user: root, trove_instances_dir: /srv/trove}
"""


@pytest.fixture
def instances(tmp_path: Path) -> Iterator[dict[str, Instance]]:
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults(catalog.host_datastores())
    found = {}
    for port, version in enumerate(DatastoreVersion.select(), start=21000):
        name = version.datastore.name
        found[name] = Instance.create(
            id=f"i-{name}",
            name=name,
            project_id="p",
            datastore_version=version,
            flavor=Flavor.get_by_id("1"),
            volume_size=1,
            status="BUILD",
            port=port,
            created_at=0,
            updated_at=0,
        )
    yield found
    database.close()


def given(playbook: str, instance: Instance, pool_file: Path) -> dict[str, Any]:
    """Everything a run of `playbook` on `instance` gets: extravars and secrets."""
    settings = Settings(
        state_dir=Path("/var/lib/trove-svc"), host_pool=str(pool_file), openstack_cloud="c"
    )
    given = provisioning.instance_vars(settings, instance)
    if playbook == "instance_create.yml":
        given.update(provisioning.create_vars(settings, instance, []))
        given.update(
            provisioning.create_secrets(settings, instance, "pw", [], "amqp://g:p@h/v", "key")
        )
        if instance.provider != "local":  # what flows.create adds (without building wheels)
            given.update(
                guest_agent_wheelhouse="/var/lib/trove-svc/guest-wheels/x",
                guest_agent_venv="/srv/guest-agent/venv",
                guest_agent_version="x",
                guest_agent_system_python="/usr/bin/python3",
            )
    if playbook == "instance_delete.yml":
        given.update(compute.purge_vars(instance, True))
    if playbook == "backup_collect.yml":
        given.update(repository_copies.collect_vars(settings, instance))
    if playbook == "instance_replication.yml":  # what a fence gives (replication_flows)
        given.update(provisioning.role_vars(instance, replication={"fenced": True}))
    return given


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(("playbook", "datastore"), RUNS)
def test_playbooks_give_roles_only_what_they_declare_and_all_they_require(
    instances: dict[str, Instance], playbook: str, datastore: str, provider: str, tmp_path: Path
) -> None:
    assert datastore in instances, f"{datastore} is not installed (scripts/bootstrap.sh does)"
    pool_file = tmp_path / "pool.yml"
    pool_file.write_text(POOL)
    instance = instances[datastore]
    instance.provider, instance.server = provider, ("h1" if provider == "ssh" else None)
    variables = given(playbook, instance, pool_file)
    assert variables["trove_compute_provider"] == provider
    for role_template, entry in PLAYBOOKS[playbook]:
        if entry == "install" and provider == "local":
            continue  # this machine's agent runs from the service's own environment
        role = role_template.format(datastore=datastore, provider=provider)
        role_specs = specs(role)
        declared = {name for spec in role_specs.values() for name in spec.get("options", {})}
        passed = {name for name in variables if name.startswith(f"{role}_")}
        assert passed <= declared, f"{role} is given undeclared {sorted(passed - declared)}"
        options = role_specs[entry].get("options", {})
        required = {name for name, option in options.items() if option.get("required")}
        assert required <= passed, f"{role} ({entry}) misses {sorted(required - passed)}"
