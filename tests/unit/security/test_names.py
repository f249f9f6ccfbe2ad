from __future__ import annotations

import pytest

from trove_svc.domain.errors import BadRequest
from trove_svc.security import names


@pytest.mark.parametrize("name", ["orders", "_tmp", "a" * 63, "Mixed_Case9"])
def test_valid_postgresql_names_pass(name: str) -> None:
    names.check_database_name("postgresql", name)
    names.check_user_name("postgresql", name)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "letter"),
        ("9lives", "letter"),
        ("semi;colon", "letter"),
        ("quo'te", "letter"),
        ('dou"ble', "letter"),
        ("a" * 64, "63"),
        ("postgres", "reserved"),
        ("root", "reserved"),
        ("ROOT", "reserved"),
        ("pg_monitor", "reserved"),
        ("os_admin", "reserved"),
    ],
)
def test_invalid_postgresql_names_name_the_rule(name: str, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        names.check_user_name("postgresql", name)


def test_postgresql_root_is_kept_as_a_user_name_only() -> None:
    """Enabling root makes the superuser `root`: a tenant may not create it, but may name
    a database so."""
    names.check_database_name("postgresql", "root")
    with pytest.raises(BadRequest, match="reserved"):
        names.check_user_name("postgresql", "root")
