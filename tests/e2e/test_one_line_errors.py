"""Mistakes that printed a traceback now print one line: the `jobexec` script as a subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobexec.testing.commands import assert_one_clean_line
from jobexec.testing.config_files import ConfigFiles, clean_environment
from jobexec.testing.network import free_port
from jobexec.testing.processes import Cli

PASSWORD = "Unr3achable"


def test_given_an_unreachable_database_when_upgrading_then_one_line_names_it_without_password(
    cli: Cli, config_files: ConfigFiles
) -> None:
    url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{free_port()}/jobs"
    env = config_files.write({"configs.jobDb.url": url})

    done = cli.run("db", "upgrade", env=env)

    assert done.returncode == 1, done.stdout + done.stderr
    assert_one_clean_line(
        done.stdout + done.stderr, done.stderr, "cannot reach the job database", "127.0.0.1"
    )
    assert PASSWORD not in done.stdout + done.stderr
    assert "postgres:***@127.0.0.1" in done.stderr


@pytest.mark.parametrize(
    ("app", "key"),
    [
        ({"configs.jobDb.url": f"postgresql+psycopg2://u:{PASSWORD}@h/jobs"}, "configs.jobDb.url"),
        ({"configs.jobDb.url": "sqlite:///x.db", "configs.metrics.port": "99999"}, "metrics.port"),
    ],
)
def test_given_a_setting_that_failed_late_when_upgrading_then_it_exits_2_naming_key_and_file(
    cli: Cli, config_files: ConfigFiles, app: dict[str, str], key: str
) -> None:
    env = config_files.write(app)

    done = cli.run("db", "upgrade", env=env)

    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_clean_line(done.stdout + done.stderr, done.stderr, key, str(config_files.app_path))
    assert PASSWORD not in done.stdout + done.stderr


def test_given_a_location_that_is_an_empty_directory_then_it_exits_2_naming_the_variable(
    cli: Cli, tmp_path: Path
) -> None:
    empty = tmp_path / "config"
    empty.mkdir()
    env = {**clean_environment(), "EXECUTOR_CONFIG_LOCATION": f"file:{empty}"}

    done = cli.run("config", env=env)

    assert done.returncode == 2, done.stdout + done.stderr
    assert_one_clean_line(
        done.stdout + done.stderr, done.stderr, "EXECUTOR_CONFIG_LOCATION", str(empty)
    )
