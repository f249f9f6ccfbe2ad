"""The one rule for what a change of a group's values puts live and what waits for a
restart (`configure_flow.plan_change`), and how the guest reads the value a removed one
goes back to from the server's own files."""

from __future__ import annotations

from pathlib import Path

from trove_datastores.base import Parameter
from trove_datastores.mariadb.driver import option_values
from trove_datastores.redis.driver import file_values
from trove_svc.taskmanager.configure_flow import plan_change

RULES = {
    "max_connections": Parameter("max_connections", "integer", False, 10, 100000, default="151"),
    "long_query_time": Parameter("long_query_time", "float", False, default="10"),
    "performance_schema": Parameter("performance_schema", "boolean", True, default="OFF"),
}


def test_a_removed_dynamic_value_is_reset_live_not_left_for_a_restart() -> None:
    before = {"max_connections": "666", "long_query_time": "2.5", "performance_schema": "ON"}
    plan = plan_change(before, {"long_query_time": "3"}, RULES, reload_rereads_file=False)
    assert plan.dynamic == {"long_query_time": "3"}
    assert plan.reset == {"max_connections": "151"}  # with the engine's described default
    assert plan.waiting == {"performance_schema"}  # removed, but needs a restart


def test_a_detach_resets_every_dynamic_value_and_only_a_restart_one_waits() -> None:
    before = {"max_connections": "666", "long_query_time": "2.5"}
    plan = plan_change(before, {}, RULES, reload_rereads_file=False)
    assert (plan.dynamic, plan.waiting) == ({}, set())
    assert set(plan.reset) == {"max_connections", "long_query_time"}


def test_a_removed_name_the_engine_no_longer_describes_waits_for_a_restart() -> None:
    plan = plan_change({"gone_option": "1"}, {}, RULES, reload_rereads_file=False)
    assert (plan.reset, plan.waiting) == ({}, {"gone_option"})


def test_where_the_reload_rereads_the_file_nothing_removed_waits() -> None:
    plan = plan_change({"max_connections": "666", "gone": "1"}, {}, RULES, True)
    assert plan.waiting == set()


def test_an_unchanged_value_is_neither_set_nor_reset() -> None:
    plan = plan_change({"max_connections": "666"}, {"max_connections": "666"}, RULES, False)
    assert (plan.changed, plan.dynamic, plan.reset, plan.waiting) == (set(), {}, {}, set())


def test_mariadb_option_files_give_the_last_value_of_a_name_with_underscores() -> None:
    printed = "--max_connections=100\n--log-error=/x\n--skip-name-resolve\n--max_connections=666\n"
    assert option_values(printed) == {
        "max_connections": "666",
        "log_error": "/x",
        "skip_name_resolve": "",
    }


def test_redis_conf_values_follow_its_includes_the_last_winning(tmp_path: Path) -> None:
    group = tmp_path / "configuration.conf"
    group.write_text('# the group\nhz "25"\nnotify-keyspace-events "Ex"\n')
    main = tmp_path / "redis.conf"
    main.write_text(
        f'hz 10\nMaxmemory-Policy noeviction\nsave ""\ninclude {tmp_path / "none.conf"}\n'
        f"include {group}\n"
    )
    assert file_values(main) == {
        "hz": "25",
        "maxmemory-policy": "noeviction",
        "save": "",
        "notify-keyspace-events": "Ex",
    }
    group.write_text("# the group, detached\n")
    assert file_values(main)["hz"] == "10"
