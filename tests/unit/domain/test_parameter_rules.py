"""A configuration group's values against the rules its engine described, kept on the
version's record: what the engine would not take is refused, naming the parameter and the
rule, never quoting the value."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trove_svc.domain import catalog, errors, parameter_rules
from trove_svc.store.db import open_store
from trove_svc.store.models import DatastoreVersion

Keep = Callable[[str, list[dict[str, Any]]], None]


@pytest.fixture
def version(
    tmp_path: Path, keep_description: Keep, mariadb_described: list[dict[str, Any]]
) -> Iterator[DatastoreVersion]:
    """A MariaDB version described as the host's MariaDB describes itself; its binaries
    are nowhere, so that a test asking its engine again fails instead of starting one."""
    database = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    catalog.ensure_defaults([catalog.HostDatastore("mariadb", "10.11", "/nonexistent")])
    keep_description("mariadb", mariadb_described)
    yield DatastoreVersion.get()
    database.close()


@pytest.mark.parametrize(
    ("name", "value", "rule"),
    [
        ("long_query_time", "1e999", "it must be a finite number"),
        ("long_query_time", 1e999, "it must be a finite number"),
        ("long_query_time", "inf", "it must be a number"),
        ("long_query_time", "nan", "it must be a number"),
        ("long_query_time", float("nan"), "it must be a finite number"),
        ("sql_mode", "STRICT_ALL_TABLES,\nansi", "it must be a comma-separated list of"),
        ("sql_mode", "STRICT_ALL_TABLES,ansi\n", "it must be a comma-separated list of"),
        ("sql_mode", "ansi, STRICT_ALL_TABLES", "it must be a comma-separated list of"),
    ],
)
def test_values_the_engine_would_not_take_are_refused_naming_parameter_and_rule(
    version: DatastoreVersion, name: str, value: object, rule: str
) -> None:
    with pytest.raises(errors.BadRequest) as refused:
        parameter_rules.checked(version, {name: value})
    assert refused.value.message.startswith(f"The value of parameter {name!r}: {rule}")
    assert repr(value) not in refused.value.message


def test_values_the_engine_takes_are_kept_as_given(version: DatastoreVersion) -> None:
    values = {"long_query_time": "1.5e2", "sql_mode": "ansi,,STRICT_ALL_TABLES"}
    assert parameter_rules.checked(version, values) == values
