"""Every datastore the registry knows is whole, each part in its one place
(docs/adding-a-datastore.md): its spec module, its guest driver and backup engine, its
Python driver among both packages' dependencies, a role that builds it, a molecule
scenario that ./scripts/test runs for that role, and its Debian packages, which
./scripts/bootstrap.sh installs and this machine has. A datastore added to one place and
not the others fails here, and so does a part that no registered datastore owns."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import trove_guest.backups
import trove_guest.drivers
from trove_wire import datastores
from trove_wire.datastores.base import DatastoreSpec

ROOT = Path(__file__).resolve().parents[2]
REGISTERED = sorted(datastores.REGISTRY)
SPECS = [datastores.REGISTRY[name] for name in REGISTERED]
BACKED_UP = [spec for spec in SPECS if spec.capabilities.backups]
# The entry points every datastore role has (the playbooks run them), and the one a role
# has when its datastore has replicas.
ENTRY_POINTS = ("main", "stop", "restart", "reconfigure", "configuration")
REPLICA_ENTRY_POINT = "replication"
# Modules beside the per-datastore ones: what they share.
SHARED_MODULES = {"base", "throwaway", "passwords"}


def _modules(package_dir: Path) -> set[str]:
    return {m.name for m in pkgutil.iter_modules([str(package_dir)])} - SHARED_MODULES


def _dependencies(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return {canonicalize_name(Requirement(d).name) for d in project["dependencies"]}


def _bootstrap_packages() -> set[str]:
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    return {
        word for found in re.findall(r"missing\+=\(([^)]*)\)", script) for word in found.split()
    }


def _resolve(target: str) -> tuple[str, object]:
    module_name, class_name = target.split(":")
    return module_name, getattr(importlib.import_module(module_name), class_name)


def test_the_molecule_scenarios_are_the_registered_datastores_roles() -> None:
    scenarios = sorted(p.name for p in (ROOT / "molecule").iterdir() if p.is_dir())
    assert scenarios == sorted(spec.role for spec in SPECS)


@pytest.mark.parametrize(
    ("package_dir", "owners"),
    [
        (Path(datastores.__file__).parent, SPECS),
        (Path(trove_guest.drivers.__file__).parent, SPECS),
        (Path(trove_guest.backups.__file__).parent, BACKED_UP),
    ],
    ids=["specs", "drivers", "backup-engines"],
)
def test_every_datastore_module_is_a_registered_datastores(
    package_dir: Path, owners: list[DatastoreSpec]
) -> None:
    assert _modules(package_dir) == {spec.name for spec in owners}


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_its_spec_lives_in_a_module_of_its_name(spec: DatastoreSpec) -> None:
    assert importlib.import_module(f"trove_wire.datastores.{spec.name}").SPEC is spec


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_its_guest_driver_is_a_class_in_a_module_of_its_name(spec: DatastoreSpec) -> None:
    module, driver = _resolve(spec.driver)
    assert module == f"trove_guest.drivers.{spec.name}" and inspect.isclass(driver)


@pytest.mark.parametrize("spec", BACKED_UP, ids=[spec.name for spec in BACKED_UP])
def test_its_backup_engine_is_a_class_in_a_module_of_its_name(spec: DatastoreSpec) -> None:
    module, engine = _resolve(spec.backup_engine)
    assert module == f"trove_guest.backups.{spec.name}" and inspect.isclass(engine)


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
@pytest.mark.parametrize("pyproject", ["pyproject.toml", "guest/pyproject.toml"])
def test_its_python_driver_is_a_dependency_of_both_packages(
    spec: DatastoreSpec, pyproject: str
) -> None:
    assert canonicalize_name(spec.python_driver) in _dependencies(ROOT / pyproject)


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_it_has_a_role_with_each_entry_point_declared_and_written(spec: DatastoreSpec) -> None:
    role = ROOT / "roles" / spec.role
    declared = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    wanted = [*ENTRY_POINTS, *([REPLICA_ENTRY_POINT] if spec.capabilities.replicas else [])]
    for entry in wanted:
        assert entry in declared["argument_specs"], f"roles/{spec.role} declares no {entry}"
        assert (role / "tasks" / f"{entry}.yml").is_file(), f"roles/{spec.role} has no {entry}"
    assert (role / "README.md").is_file()


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_it_has_a_molecule_scenario_that_converges_its_role(spec: DatastoreSpec) -> None:
    scenario = ROOT / "molecule" / spec.role
    declared = yaml.safe_load((scenario / "molecule.yml").read_text())
    assert declared["scenario"]["name"] == spec.role
    for step in ("converge", "verify", "cleanup"):
        assert step in declared["scenario"]["test_sequence"]
        assert (scenario / declared["ansible"]["playbooks"][step]).is_file()
    plays = yaml.safe_load((scenario / "converge.yml").read_text())
    converged = [role["role"] for play in plays for role in play.get("roles", [])]
    assert converged == [spec.role]


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_bootstrap_installs_its_packages_and_this_machine_has_its_server(
    spec: DatastoreSpec,
) -> None:
    assert spec.os_packages, f"{spec.name} names no Debian package"
    missing = set(spec.os_packages) - _bootstrap_packages()
    assert not missing, f"scripts/bootstrap.sh does not install {sorted(missing)}"
    assert spec.discover() is not None, f"no {spec.name} server on this machine"


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_its_role_variables_carry_its_roles_name(spec: DatastoreSpec) -> None:
    assert spec.role_var("port") == f"{spec.role}_port"
    assert spec.role_vars({"port": 1, "restore": {}}) == {
        f"{spec.role}_port": 1,
        f"{spec.role}_restore": {},
    }
