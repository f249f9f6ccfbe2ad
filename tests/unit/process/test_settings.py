from __future__ import annotations

from pathlib import Path

import pytest

from trove_svc.process.settings import Settings, SettingsError, environment_for


def test_environment_overrides_defaults_with_types() -> None:
    settings = Settings.from_env(
        {
            "TROVE_SVC_STATE_DIR": "/srv/trove",
            "TROVE_SVC_PORT": "9000",
            "TROVE_SVC_CALL_TIMEOUT": "2.5",
        }
    )
    assert settings.state_dir == Path("/srv/trove")
    assert settings.port == 9000 and settings.call_timeout == 2.5
    assert settings.effective_database_url == "sqlite:////srv/trove/trove-svc.db"


def test_database_url_wins_over_the_embedded_default() -> None:
    settings = Settings.from_env({"TROVE_SVC_DATABASE_URL": "postgresql://db/trove"})
    assert settings.effective_database_url == "postgresql://db/trove"


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "trove.toml"
    config.write_text('port = 8000\nhost = "0.0.0.0"\n')
    settings = Settings.from_env({"TROVE_SVC_CONFIG": str(config), "TROVE_SVC_PORT": "8001"})
    assert settings.host == "0.0.0.0" and settings.port == 8001


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "trove.toml"
    config.write_text("colour = 'blue'\n")
    with pytest.raises(ValueError, match="colour"):
        Settings.from_env({"TROVE_SVC_CONFIG": str(config)})


def test_settings_survive_the_trip_to_a_child_process() -> None:
    settings = Settings(port=8123, heartbeat_interval=1.5)
    assert Settings.from_env(environment_for(settings)) == settings


def test_bad_settings_are_each_named_with_why() -> None:
    from trove_svc.process.settings import SettingsError

    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {
                "TROVE_SVC_API_WORKERS": "abc",
                "TROVE_SVC_PORT": "70000",
                "TROVE_SVC_LOG_FORMAT": "xml",
                "TROVE_SVC_PORT_RANGE_START": "9000",
                "TROVE_SVC_PORT_RANGE_END": "8000",
            }
        )
    assert raised.value.problems[0] == "TROVE_SVC_API_WORKERS='abc': a whole number"
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(
            {
                "TROVE_SVC_PORT": "70000",
                "TROVE_SVC_LOG_FORMAT": "xml",
                "TROVE_SVC_PORT_RANGE_START": "9000",
                "TROVE_SVC_PORT_RANGE_END": "8000",
                "TROVE_SVC_LOCAL_ADDRESSES": "127.21.0.1/16",
                "TROVE_SVC_HEARTBEAT_INTERVAL": "6",
                "TROVE_SVC_BACKUP_REPOSITORIES": "backups",
            }
        )
    text = "\n".join(raised.value.problems)
    assert "TROVE_SVC_BACKUP_REPOSITORIES='backups': an absolute path" in text
    assert "TROVE_SVC_SOURCE_LEASE=10 must be at least twice TROVE_SVC_HEARTBEAT_INTERVAL=6" in text
    assert "TROVE_SVC_LOCAL_ADDRESSES='127.21.0.1/16': an IPv4 network" in text
    assert "TROVE_SVC_PORT=70000: a TCP port is 1 to 65535" in text
    assert "TROVE_SVC_LOG_FORMAT='xml': text or json" in text
    assert "TROVE_SVC_PORT_RANGE_START=9000 is above TROVE_SVC_PORT_RANGE_END=8000" in text


def test_backup_repositories_are_the_state_directorys_unless_set_elsewhere() -> None:
    state = {"TROVE_SVC_STATE_DIR": "/var/lib/trove-svc"}
    assert Settings.from_env(state).backups_dir == Path("/var/lib/trove-svc/backups")
    shared = {**state, "TROVE_SVC_BACKUP_REPOSITORIES": "/srv/trove-backups"}
    assert Settings.from_env(shared).backups_dir == Path("/srv/trove-backups")


def test_the_local_network_may_be_empty() -> None:
    # Empty: instances share 127.0.0.1, each at a port of the range.
    assert Settings.from_env({"TROVE_SVC_LOCAL_ADDRESSES": ""}).local_addresses == ""


def test_a_misspelled_setting_is_warned_about() -> None:
    from trove_svc.process.settings import unknown_variables

    found = unknown_variables({"TROVE_SVC_STAET_DIR": "/x", "TROVE_SVC_PORT": "1", "HOME": "/"})
    assert found == [
        "TROVE_SVC_STAET_DIR is not a setting of trove-svc; did you mean TROVE_SVC_STATE_DIR?"
    ]


def test_generated_passwords_meet_the_strictest_policy_allowed() -> None:
    from trove_svc.process.settings import GENERATED_SECRET_LENGTH, SettingsError
    from trove_wire import datastores

    strictest = Settings.from_env({"TROVE_SVC_PASSWORD_MIN_LENGTH": str(GENERATED_SECRET_LENGTH)})
    for name, spec in datastores.REGISTRY.items():
        rule = spec.password_rule
        for _ in range(50):
            secret = strictest.new_secret()
            assert rule.problem(secret, strictest.password_min_length) is None, (name, secret)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TROVE_SVC_PASSWORD_MIN_LENGTH": str(GENERATED_SECRET_LENGTH + 1)})
    assert "1 to 32 (the length of generated passwords)" in raised.value.problems[0]


@pytest.mark.parametrize(
    ("transport_url", "broker_vhost", "expected"),
    [
        # Trove's documented form: an account the operator made, on the default vhost.
        ("amqp://trove:secret@rabbit:5672/", "", "/"),
        ("amqp://trove:secret@rabbit:5672", "", "/"),
        ("amqp://trove:secret@rabbit:5672/%2F", "", "/"),
        ("amqp://trove:secret@rabbit:5672/dbaas", "", "dbaas"),
        ("amqp://trove:secret@rabbit:5672/", "dbaas", "dbaas"),
        # No account named: the one setup makes, on the deployment's own vhost.
        ("amqp://127.0.0.1:5672/", "", "trove-svc-"),
        ("amqp://127.0.0.1:5672/", "dbaas", "dbaas"),
        ("amqp://127.0.0.1:5672/dbaas", "other", "dbaas"),
    ],
)
def test_the_vhost_is_the_urls_else_the_settings_else_the_named_accounts_default(
    tmp_path: Path, transport_url: str, broker_vhost: str, expected: str
) -> None:
    settings = Settings(state_dir=tmp_path, transport_url=transport_url, broker_vhost=broker_vhost)
    if expected == "trove-svc-":
        assert settings.vhost.startswith("trove-svc-") and len(settings.vhost) == 20
    else:
        assert settings.vhost == expected


def test_warm_pools_are_read_per_datastore_version_and_flavor() -> None:
    settings = Settings.from_env(
        {"TROVE_SVC_WARM_POOL": "postgresql:15:1=2, mariadb:10.11:2=1,redis:7.0:1=0"}
    )
    assert {str(key): size for key, size in settings.warm_pools.items()} == {
        "postgresql:15:1": 2,
        "mariadb:10.11:2": 1,
        "redis:7.0:1": 0,
    }
    assert Settings().warm_pools == {}


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("postgresql=2", "'postgresql=2' is not datastore:version:flavor=size"),
        ("postgresql:15:1", "is not datastore:version:flavor=size"),
        ("postgresql:15:1=-1", "is not datastore:version:flavor=size"),
        ("postgresql:15:1=two", "is not datastore:version:flavor=size"),
        ("postgresql:{{ x }}:1=1", "is not datastore:version:flavor=size"),
        ("mysql:8.0:1=1", "no datastore 'mysql' (there are mariadb, postgresql, redis)"),
        ("postgresql:15:1=1,postgresql:15:1=2", "postgresql:15:1 is given twice"),
        ("postgresql:15:1=51", "a pool holds at most 50 instances"),
    ],
)
def test_a_warm_pool_setting_that_makes_no_sense_is_refused_saying_why(
    value: str, why: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"TROVE_SVC_WARM_POOL": value})
    (problem,) = refused.value.problems
    assert problem.startswith("TROVE_SVC_WARM_POOL=") and why in problem, problem


def test_warm_pools_are_for_the_local_provider_only() -> None:
    with pytest.raises(SettingsError, match="WARM_POOL is for the local provider only"):
        Settings.from_env(
            {
                "TROVE_SVC_WARM_POOL": "postgresql:15:1=1",
                "TROVE_SVC_COMPUTE_PROVIDER": "openstack",
                "TROVE_SVC_OPENSTACK_CLOUD": "c",
            }
        )


def test_a_state_directory_too_long_for_an_instances_socket_is_refused() -> None:
    # PostgreSQL's socket is the longest: <state>/instances/<id>/postgresql/.s.PGSQL.<port>,
    # 73 bytes past the state directory; a socket's path holds 107.
    fits = "/" + "s" * 33
    assert Settings.from_env({"TROVE_SVC_STATE_DIR": fits}).state_dir == Path(fits)
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"TROVE_SVC_STATE_DIR": fits + "s"})
    [problem] = raised.value.problems
    assert problem.startswith(f"TROVE_SVC_STATE_DIR='{fits}s': an instance's server socket")
    assert "108 bytes long" in problem and problem.endswith("of at most 34 bytes")
    # Instances on other hosts do not live there.
    assert Settings.from_env(
        {
            "TROVE_SVC_STATE_DIR": fits + "s",
            "TROVE_SVC_COMPUTE_PROVIDER": "ssh",
            "TROVE_SVC_HOST_POOL": "/etc/pool.yml",
        }
    )


def test_a_transport_url_may_name_a_clusters_nodes() -> None:
    settings = Settings.from_env({"TROVE_SVC_TRANSPORT_URL": "amqp://r1:5672,r2:5672,r3/"})
    assert settings.management_url == "http://r1:15672,http://r2:15672,http://r3:15672"
    for bad in ("amqp://r1:5672,,r2/", "amqp://r1:notaport/", "http://r1/"):
        with pytest.raises(SettingsError, match="TRANSPORT_URL"):
            Settings.from_env({"TROVE_SVC_TRANSPORT_URL": bad})


def test_a_joined_nodes_shared_settings_lie_beneath_its_environment(tmp_path: Path) -> None:
    (tmp_path / "joined.json").write_text(
        '{"database_url": "postgresql://db/trove", "broker_vhost": "shared",'
        ' "transport_url": "amqp://r1,r2/", "rabbit_management_url": ""}'
    )
    pool = {"TROVE_SVC_COMPUTE_PROVIDER": "ssh", "TROVE_SVC_HOST_POOL": "/etc/pool.yml"}
    joined = Settings.from_env({"TROVE_SVC_STATE_DIR": str(tmp_path), **pool})
    assert joined.effective_database_url == "postgresql://db/trove"
    assert joined.vhost == "shared" and joined.transport_url == "amqp://r1,r2/"
    own = Settings.from_env(
        {"TROVE_SVC_STATE_DIR": str(tmp_path), "TROVE_SVC_BROKER_VHOST": "mine", **pool}
    )
    assert own.vhost == "mine" and own.effective_database_url == "postgresql://db/trove"
