"""Time limits of a try: precedence, validation and the reason a try past its limit records."""

from __future__ import annotations

from typing import Any

import pytest

from executors import PermanentError
from jobexec.core.config import ConfigError, Settings
from workers.limits import TimeLimits, limit_reason


def settings(**env: str) -> Settings:
    return Settings.load(env)


def test_given_no_settings_when_a_limit_is_asked_then_it_is_an_hour() -> None:
    limits = TimeLimits.from_settings(settings(), ["http", "sleep"])

    assert limits.for_run("http", {"task": "http"}) == 3600


def test_given_all_three_limits_when_asked_then_payload_beats_task_beats_global() -> None:
    limits = TimeLimits.from_settings(
        settings(
            CONFIGS_EXECUTORS_MAXRUNSECONDS="60",
            CONFIGS_EXECUTORS_SLEEP_MAXRUNSECONDS="0.5",
        ),
        ["http", "sleep"],
    )

    assert limits.for_run("http", {}) == 60
    assert limits.for_run("sleep", {}) == 0.5
    assert limits.for_run("sleep", {"max_run_seconds": 7}) == 7


@pytest.mark.parametrize("value", ["0", "-1", "ten", "nan", "inf", ""])
def test_given_a_bad_task_limit_when_read_then_the_error_names_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TimeLimits.from_settings(settings(CONFIGS_EXECUTORS_SLEEP_MAXRUNSECONDS=value), ["sleep"])

    assert caught.value.key == "configs.executors.sleep.max-run-seconds"
    assert "environment variable CONFIGS_EXECUTORS_SLEEP_MAXRUNSECONDS" in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-3", "an hour"])
def test_given_a_bad_global_limit_when_loaded_then_the_error_names_the_key(value: str) -> None:
    with pytest.raises(ConfigError, match=r"configs\.executors\.max-run-seconds"):
        settings(CONFIGS_EXECUTORS_MAXRUNSECONDS=value)


@pytest.mark.parametrize(
    "value", [0, -1, "30", None, True, float("nan"), float("inf"), 10**400, [1]]
)
def test_given_a_bad_payload_limit_when_asked_then_it_is_a_permanent_error_naming_it(
    value: Any,
) -> None:
    with pytest.raises(PermanentError, match=r"payload\.max_run_seconds"):
        TimeLimits().for_run("http", {"max_run_seconds": value})


@pytest.mark.parametrize(
    ("seconds", "reason"),
    [
        (30, "run exceeded its time limit of 30 s"),
        (30.0, "run exceeded its time limit of 30 s"),
        (0.5, "run exceeded its time limit of 0.5 s"),
        (3600, "run exceeded its time limit of 3600 s"),
    ],
)
def test_given_a_limit_when_exceeded_then_the_reason_shows_it_as_people_write_it(
    seconds: float, reason: str
) -> None:
    assert limit_reason(seconds) == reason
