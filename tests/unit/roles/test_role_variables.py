"""The contract between the control plane and the roles: every variable a playbook is
given for a role is one that role declares (`meta/argument_specs.yml`), and every option
an entry point requires is given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from trove_svc import catalog
from trove_svc.settings import PROJECT_ROOT, Settings
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion, Flavor, Instance
from trove_svc.taskmanager import provisioning

ROLES = PROJECT_ROOT / "roles"
DATASTORES = ["postgresql", "mariadb", "redis"]
# Which entry point of which role each playbook runs ("{datastore}" is the instance's).
PLAYBOOKS = {
    "instance_create.yml": [("compute_local", "main"), ("{datastore}", "main"), ("guest_agent", "main")],
    "instance_delete.yml": [("guest_agent", "stop"), ("{datastore}", "stop"), ("compute_local", "teardown")],
    "instance_restart.yml": [("{datastore}", "restart"), ("guest_agent", "service")],
    "instance_reconfigure.yml": [("{datastore}", "reconfigure")],
}  # fmt: skip


def specs(role: str) -> dict[str, dict[str, Any]]:
    path = ROLES / role / "meta" / "argument_specs.yml"
    loaded: dict[str, dict[str, Any]] = yaml.safe_load(path.read_text())["argument_specs"]
    return loaded


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


def given(playbook: str, instance: Instance) -> dict[str, Any]:
    """Everything a run of `playbook` on `instance` gets: extravars and secrets."""
    settings = Settings(state_dir=Path("/var/lib/trove-svc"))
    given = provisioning.instance_vars(settings, instance)
    if playbook == "instance_create.yml":
        given.update(provisioning.create_vars(settings, instance, []))
        given.update(
            provisioning.create_secrets(settings, instance, "pw", [], "amqp://g:p@h/v", "key")
        )
    if playbook == "instance_delete.yml":
        given["compute_local_purge"] = True
    return given


@pytest.mark.parametrize("datastore", DATASTORES)
@pytest.mark.parametrize("playbook", sorted(PLAYBOOKS))
def test_playbooks_give_roles_only_what_they_declare_and_all_they_require(
    instances: dict[str, Instance], playbook: str, datastore: str
) -> None:
    assert datastore in instances, f"{datastore} is not installed (scripts/bootstrap.sh does)"
    variables = given(playbook, instances[datastore])
    for role_template, entry in PLAYBOOKS[playbook]:
        role = role_template.format(datastore=datastore)
        role_specs = specs(role)
        declared = {name for spec in role_specs.values() for name in spec.get("options", {})}
        passed = {name for name in variables if name.startswith(f"{role}_")}
        assert passed <= declared, f"{role} is given undeclared {sorted(passed - declared)}"
        options = role_specs[entry].get("options", {})
        required = {name for name, option in options.items() if option.get("required")}
        assert required <= passed, f"{role} ({entry}) misses {sorted(required - passed)}"
