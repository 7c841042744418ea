"""`celery -A workers.app worker` with a bad Celery setting: one line naming the key, exit 2, as
`jobexec worker` does, never Celery's "Unable to load celery application" traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobexec.testing.commands import assert_one_clean_line
from jobexec.testing.config_files import ConfigFiles

SECRET = "hunter2xyz"


def _celery_worker(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    celery = str(Path(sys.prefix) / "bin" / "celery")
    return subprocess.run(
        [celery, "-A", "workers.app", "worker", "--pool", "solo"],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CONFIGS_CELERY_PROPERTIES_WORKER_PREFETCH_MULTIPLIER", "abc"),  # jobexec's own
        ("CONFIGS_CELERY_PROPERTIES_WORKER_PREFETCH_MULTIPLYER", "4"),  # not a Celery setting
        ("CONFIGS_CELERY_BROKERURL", "nosuch://127.0.0.1:1"),
    ],
)
def test_given_a_bad_celery_setting_in_the_environment_when_celery_starts_the_worker_then_it_exits_2_naming_it(  # noqa: E501
    config_files: ConfigFiles, tmp_path: Path, variable: str, value: str
) -> None:
    env = config_files.write(
        {"configs.jobDb.url": f"sqlite:///{tmp_path / 'jobs.db'}"},
        {"secrets.datasource.password": SECRET},
    )
    env[variable] = value

    done = _celery_worker(env, tmp_path)

    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert_one_clean_line(output, done.stderr, variable, "jobexec: configuration error")
    assert "Unable to load celery application" not in output
    assert SECRET not in output


def test_given_an_unknown_celery_property_in_a_file_when_celery_starts_the_worker_then_it_names_key_and_file(  # noqa: E501
    config_files: ConfigFiles, tmp_path: Path
) -> None:
    env = config_files.write(
        {
            "configs.jobDb.url": f"sqlite:///{tmp_path / 'jobs.db'}",
            "configs.celery.properties.worker_no_such_setting": "1",
        }
    )

    done = _celery_worker(env, tmp_path)

    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert_one_clean_line(
        output,
        done.stderr,
        "configs.celery.properties.worker_no_such_setting",
        "is not a Celery setting",
        str(config_files.app_path),
    )
