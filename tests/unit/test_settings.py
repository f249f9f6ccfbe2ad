from __future__ import annotations

from pathlib import Path

import pytest

from trove_svc.settings import Settings, environment_for


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
