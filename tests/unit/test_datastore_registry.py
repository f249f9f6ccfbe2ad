"""Every datastore the registry knows is whole: a role that builds it, a molecule scenario
that ./scripts/test runs for that role, and a server that ./scripts/bootstrap.sh installed
on this machine. A datastore added to one place and not the others fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from trove_wire import datastores

ROOT = Path(__file__).resolve().parents[2]
REGISTERED = sorted(datastores.REGISTRY)


def test_the_molecule_scenarios_are_the_registered_datastores() -> None:
    scenarios = sorted(p.name for p in (ROOT / "molecule").iterdir() if p.is_dir())
    assert scenarios == REGISTERED


@pytest.mark.parametrize("name", REGISTERED)
def test_a_registered_datastore_has_a_role_with_its_arguments(name: str) -> None:
    role = ROOT / "roles" / name
    assert (role / "tasks" / "main.yml").is_file()
    assert (role / "meta" / "argument_specs.yml").is_file()
    assert (ROOT / "molecule" / name / "molecule.yml").is_file()


@pytest.mark.parametrize("name", REGISTERED)
def test_bootstrap_installed_a_server_of_each_registered_datastore(name: str) -> None:
    assert datastores.get(name).discover() is not None, f"scripts/bootstrap.sh installs no {name}"
