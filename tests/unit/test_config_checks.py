"""Settings that used to pass the checks and fail later with a traceback: each is a ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobexec.core.config import ConfigError, Settings
from jobexec.core.db.engine import database_url


@pytest.mark.parametrize(
    ("variable", "key", "value"),
    [
        ("CONFIGS_METRICS_PORT", "configs.metrics.port", "99999"),
        ("CONFIGS_METRICS_PORT", "configs.metrics.port", "-1"),
        ("CONFIGS_FLOWER_PORT", "configs.flower.port", "65536"),
        ("CONFIGS_SMTP_PORT", "configs.smtp.port", "70000"),
    ],
)
def test_a_port_out_of_range_is_refused_naming_the_key(variable: str, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load({variable: value})

    assert caught.value.key == key
    assert variable in str(caught.value)


def test_ports_at_the_edges_of_the_range_are_accepted() -> None:
    settings = Settings.load({"CONFIGS_METRICS_PORT": "0", "CONFIGS_FLOWER_PORT": "65535"})

    assert settings.get("configs.metrics.port") == 0
    assert settings.get("configs.flower.port") == 65535


def test_web_surfaces_bind_loopback_by_default() -> None:
    settings = Settings.load({})

    assert settings.get("configs.flower.address") == "127.0.0.1"
    assert settings.get("configs.metrics.host") == "127.0.0.1"


def test_a_location_that_is_an_empty_directory_is_refused_naming_the_variable(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load({"EXECUTOR_CONFIG_LOCATION": f"file:{tmp_path}"})

    assert caught.value.key == "EXECUTOR_CONFIG_LOCATION"
    assert str(tmp_path) in str(caught.value)


def test_an_optional_empty_directory_is_accepted(tmp_path: Path) -> None:
    assert Settings.load({"SPRING_CONFIG_LOCATION": f"optional:file:{tmp_path}"}).files == ()


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg2://u:pw@h/jobs", "postgresql+pg8000://h/jobs", "sqlite+nope:///x"]
)
def test_a_database_driver_that_is_not_installed_is_a_setting_error(url: str) -> None:
    settings = Settings.load({"CONFIGS_JOBDB_URL": url})

    with pytest.raises(ConfigError) as caught:
        database_url(settings)

    assert caught.value.key == "configs.jobDb.url"
    assert "not installed" in str(caught.value)
    assert "pw" not in str(caught.value)
