"""A parameter's rules, as the engine described them, refuse what the engine would."""

from __future__ import annotations

import pytest

from trove_datastores.base import Parameter
from trove_datastores.postgresql import spec as postgresql

WORK_MEM = Parameter("work_mem", "integer", False, 64, 2_147_483_647, unit="kB")
COST = Parameter("random_page_cost", "float", False, 0.0, 100.0)
UNBOUNDED = Parameter("long_query_time", "float", False, 0.0)
LOG = Parameter("log_statement", "enum", False, choices=("none", "ddl", "mod", "all"))
MODE = Parameter("sql_mode", "set", False, choices=("STRICT_TRANS_TABLES", "ANSI_QUOTES"))
SWITCH = Parameter("autovacuum", "boolean", False)
ZONE = Parameter("timezone", "string", False)


@pytest.mark.parametrize(
    ("rule", "value", "words"),
    [
        (WORK_MEM, "lots", "an integer"),
        (WORK_MEM, 1.5, "an integer"),
        (WORK_MEM, True, "an integer"),
        (WORK_MEM, 63, "between 64 and 2147483647 (kB)"),
        (COST, "steep", "a number"),
        (COST, 101, "between 0.0 and 100.0"),
        (UNBOUNDED, "1e999", "a finite number"),
        (UNBOUNDED, float("inf"), "a finite number"),
        (UNBOUNDED, float("nan"), "a finite number"),
        (UNBOUNDED, "inf", "a number"),
        (UNBOUNDED, "nan", "a number"),
        (UNBOUNDED, "1_000", "a number"),  # Python reads it; the engine would not
        (UNBOUNDED, " 2", "a number"),
        (WORK_MEM, float("inf"), "an integer"),
        (WORK_MEM, "1e999", "an integer"),
        (LOG, "everything", "one of none, ddl, mod, all"),
        (MODE, "STRICT_TRANS_TABLES,NOPE", "comma-separated list"),
        (MODE, "STRICT_TRANS_TABLES,\nANSI_QUOTES", "comma-separated list"),
        (MODE, "STRICT_TRANS_TABLES, ANSI_QUOTES", "comma-separated list"),  # as the engine
        (MODE, "ANSI_QUOTES\x00", "comma-separated list"),
        (SWITCH, "maybe", "boolean"),
        (ZONE, "UTC'; archive_command = 'x", "letters, digits"),
        (ZONE, "a\nb", "letters, digits"),
        (ZONE, {"nested": 1}, "a string"),
    ],
)
def test_a_value_outside_the_rule_is_refused_with_the_rule(
    rule: Parameter, value: object, words: str
) -> None:
    problem = rule.problem(value)
    assert problem is not None and words in problem


@pytest.mark.parametrize(
    ("rule", "value", "spelled"),
    [
        (WORK_MEM, 8192, "8192"),
        (WORK_MEM, "8192", "8192"),
        (COST, 1.5, "1.5"),
        (LOG, "DDL", "DDL"),
        (MODE, "ansi_quotes,STRICT_TRANS_TABLES", "ansi_quotes,STRICT_TRANS_TABLES"),
        (MODE, "ANSI_QUOTES,,STRICT_TRANS_TABLES", "ANSI_QUOTES,,STRICT_TRANS_TABLES"),
        (MODE, "", ""),
        (UNBOUNDED, "2.5e-3", "2.5e-3"),
        (UNBOUNDED, ".5", ".5"),
        (SWITCH, True, "on"),
        (SWITCH, "off", "off"),
        (ZONE, "Europe/Paris", "Europe/Paris"),
    ],
)
def test_a_value_inside_the_rule_is_taken_and_spelled_for_the_engine(
    rule: Parameter, value: object, spelled: str
) -> None:
    assert rule.problem(value) is None
    assert rule.engine_value(value) == spelled


def test_booleans_are_spelled_as_the_engine_spells_them() -> None:
    assert SWITCH.engine_value("yes", truth=("yes", "no")) == "yes"
    assert SWITCH.engine_value(False, truth=("yes", "no")) == "no"


def test_a_described_rule_survives_the_store() -> None:
    assert Parameter.from_record(MODE.record()) == MODE


ZONES = Parameter(
    "timezone", "string", False, choices=("UTC", "Europe/Paris"), hint="a time zone, such as UTC"
)
STANDBYS = Parameter(
    "synchronous_standby_names", "string", False, pattern=r"\*|[a-z]+", hint="names or *"
)
EVENTS = Parameter("notify-keyspace-events", "string", False, pattern=r"(?-i:[KEA]*)", hint="KEA")


@pytest.mark.parametrize(
    ("rule", "value", "problem"),
    [
        (ZONES, "europe/paris", None),
        (ZONES, "Nowhere/Land", "it must be a time zone, such as UTC"),
        (STANDBYS, "*", None),
        (STANDBYS, "Replica", None),
        (STANDBYS, "two words", "it must be names or *"),
        (EVENTS, "KEA", None),
        (EVENTS, "kea", "it must be KEA"),  # the engine tells K from k
    ],
)
def test_strings_in_a_form_of_the_engines_own(
    rule: Parameter, value: str, problem: str | None
) -> None:
    assert rule.problem(value) == problem
    assert Parameter.from_record(rule.record()) == rule


def test_postgresql_databases_take_the_engines_locales_exactly_and_their_encodings() -> None:
    # As pg_collation lists them: C and POSIX go with any encoding ('').
    locales = [("C", ""), ("POSIX", ""), ("C", "UTF8"), ("C.utf8", "UTF8"), ("de_DE", "LATIN1")]
    encoding, collate = postgresql.database_rules(locales)
    assert encoding.choices == ("LATIN1", "UTF8")
    assert [v for v in ("utf8", "latin1", "SQL_ASCII", "EUC_JP") if not encoding.problem(v)] == [
        "utf8",
        "latin1",
    ]
    taken = ("C", "POSIX", "C.utf8", "de_DE")
    assert all(collate.problem(name) is None for name in taken)
    for refused in ("c.utf8", "de_de", "C.utf8|POSIX", "C.", "ucs_basic", ""):
        assert collate.problem(refused) == "it must be a locale the engine knows " + (
            "(pg_collation): C, C.utf8, POSIX, de_DE"
        )
    assert Parameter.from_record(collate.record()) == collate
