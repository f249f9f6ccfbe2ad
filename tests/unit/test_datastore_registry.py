"""Every datastore the registry knows is whole, each part in its one place
(docs/adding-a-datastore.md): its folder under guest/trove_datastores with its spec, its
guest driver and its backup engine, its Python driver among both packages' dependencies,
a role that builds it, a molecule scenario that ./scripts/test runs for that role, and its
Debian packages, which ./scripts/bootstrap.sh reads from its spec and this machine has. A
datastore added to one place and not the others fails here, and so does a part that no
registered datastore owns."""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import trove_datastores
import trove_guest.backups
import trove_guest.drivers
from trove_datastores.base import DatastoreSpec
from trove_wire import datastores

ROOT = Path(__file__).resolve().parents[2]
DATASTORES_DIR = Path(trove_datastores.__file__).parent
REGISTERED = sorted(datastores.REGISTRY)
SPECS = [datastores.REGISTRY[name] for name in REGISTERED]
BACKED_UP = [spec for spec in SPECS if spec.capabilities.backups]
FAILING_OVER = [spec for spec in SPECS if spec.capabilities.failover]
# The entry points every datastore role has (the playbooks run them), and the one a role
# has when its datastore has replicas.
ENTRY_POINTS = ("main", "stop", "restart", "reconfigure", "configuration")
REPLICA_ENTRY_POINT = "replication"
# The modules of trove_datastores beside the folders: what every spec is made of.
SHARED_BY_THE_SPECS = {"base", "throwaway"}


def _parts(spec: DatastoreSpec) -> list[str]:
    return ["spec", "driver", *(["backup"] if spec.capabilities.backups else [])]


DATASTORE_MODULES = [
    f"trove_datastores.{spec.name}.{part}" for spec in SPECS for part in _parts(spec)
]


def _modules(package_dir: Path) -> set[str]:
    return {m.name for m in pkgutil.iter_modules([str(package_dir)])}


def _dependencies(pyproject: Path) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return {canonicalize_name(Requirement(d).name) for d in project["dependencies"]}


def _resolve(target: str) -> tuple[str, object]:
    module_name, class_name = target.split(":")
    return module_name, getattr(importlib.import_module(module_name), class_name)


def test_the_molecule_scenarios_are_the_registered_datastores_roles() -> None:
    scenarios = sorted(p.name for p in (ROOT / "molecule").iterdir() if p.is_dir())
    assert scenarios == sorted(spec.role for spec in SPECS)


def test_every_folder_of_trove_datastores_is_a_registered_datastore() -> None:
    folders = sorted(
        p.name for p in DATASTORES_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"
    )
    assert folders == REGISTERED
    assert _modules(DATASTORES_DIR) == {*REGISTERED, *SHARED_BY_THE_SPECS}


@pytest.mark.parametrize(
    ("package_dir", "shared"),
    [
        (Path(datastores.__file__).parent, set()),
        (Path(trove_guest.drivers.__file__).parent, {"passwords"}),
        (Path(trove_guest.backups.__file__).parent, set()),
    ],
    ids=["registry", "drivers", "backup-engines"],
)
def test_the_shared_packages_hold_no_datastores_module(package_dir: Path, shared: set[str]) -> None:
    assert _modules(package_dir) == shared


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_its_folder_holds_its_spec_driver_and_backup_engine_only(spec: DatastoreSpec) -> None:
    assert _modules(DATASTORES_DIR / spec.name) == set(_parts(spec))
    assert (DATASTORES_DIR / spec.name / "__init__.py").is_file()


@pytest.mark.parametrize("module", DATASTORE_MODULES)
def test_each_datastore_module_imports_first_in_a_new_process(module: str) -> None:
    """The registry imports every spec: a datastore's module that a process imports before
    the registry must not meet itself half made on the way."""
    probe = f"import {module}\nfrom trove_wire import datastores\nprint(*datastores.REGISTRY)"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == REGISTERED


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_its_spec_is_the_one_in_its_folder(spec: DatastoreSpec) -> None:
    assert importlib.import_module(f"trove_datastores.{spec.name}.spec").SPEC is spec


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_its_guest_driver_is_a_class_in_its_folder(spec: DatastoreSpec) -> None:
    module, driver = _resolve(spec.driver)
    assert module == f"trove_datastores.{spec.name}.driver" and inspect.isclass(driver)


@pytest.mark.parametrize("spec", FAILING_OVER, ids=[spec.name for spec in FAILING_OVER])
def test_a_datastore_that_fails_over_has_a_driver_that_fences_it(spec: DatastoreSpec) -> None:
    """Its guest keeps the source's lease with these (trove_guest.agent)."""
    _, driver = _resolve(spec.driver)
    for name in ("fence_writes", "take_writes", "hard_stop"):
        wanted = inspect.signature(getattr(trove_guest.drivers.FencingDriver, name))
        assert inspect.signature(getattr(driver, name)) == wanted, name


@pytest.mark.parametrize("spec", BACKED_UP, ids=[spec.name for spec in BACKED_UP])
def test_its_backup_engine_is_a_class_in_its_folder(spec: DatastoreSpec) -> None:
    module, engine = _resolve(spec.backup_engine)
    assert module == f"trove_datastores.{spec.name}.backup" and inspect.isclass(engine)


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


def _bootstrap_derived_packages() -> list[str]:
    """What scripts/bootstrap.sh reads from the specs, read as it reads them: the OS's own
    Python, no site-packages, only guest/ on the path."""
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    command = "PYTHONPATH=guest /usr/bin/python3 -S scripts/datastore_os_packages.py"
    assert command in bootstrap
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": "guest"}
    done = subprocess.run(
        ["/usr/bin/python3", "-S", "scripts/datastore_os_packages.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.split()


def test_bootstrap_reads_the_datastores_packages_from_their_specs() -> None:
    assert _bootstrap_derived_packages() == sorted(
        {package for spec in SPECS for package in spec.os_packages}
    )


def test_bootstrap_names_no_datastores_package_by_hand() -> None:
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    written = {w for found in re.findall(r"missing\+=\(([^)]*)\)", script) for w in found.split()}
    assert written.isdisjoint(package for spec in SPECS for package in spec.os_packages)


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_this_machine_has_its_packages_and_its_server(spec: DatastoreSpec) -> None:
    assert spec.os_packages, f"{spec.name} names no Debian package"
    for package in spec.os_packages:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", package],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        assert status == "installed", f"{package} is not installed: run scripts/bootstrap.sh"
    assert spec.discover() is not None, f"no {spec.name} server on this machine"


@pytest.mark.parametrize("spec", SPECS, ids=REGISTERED)
def test_its_role_variables_carry_its_roles_name(spec: DatastoreSpec) -> None:
    assert spec.role_var("port") == f"{spec.role}_port"
    assert spec.role_vars({"port": 1, "restore": {}}) == {
        f"{spec.role}_port": 1,
        f"{spec.role}_restore": {},
    }
