"""Reading concurrency caps from the settings, and the delay of a deferred try."""

from __future__ import annotations

import pytest

from jobexec.core.config import ConfigError, Settings
from workers.concurrency import DEFER_MAX_S, DEFER_MIN_S, caps_from_settings, defer_delay


def test_given_no_caps_when_read_then_every_task_is_unlimited() -> None:
    assert caps_from_settings(Settings.load({}), ["http", "sleep"]) == {}


def test_given_a_cap_for_one_task_when_read_then_only_that_task_is_capped() -> None:
    settings = Settings.load({"CONFIGS_EXECUTORS_SLEEP_CONCURRENCY": " 3 "})

    assert caps_from_settings(settings, ["http", "sleep"]) == {"sleep": 3}


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_given_a_bad_cap_when_read_then_the_error_names_the_key_and_its_source(
    value: str,
) -> None:
    settings = Settings.load({"CONFIGS_EXECUTORS_SLEEP_CONCURRENCY": value})

    with pytest.raises(ConfigError) as caught:
        caps_from_settings(settings, ["sleep"])

    assert caught.value.key == "configs.executors.sleep.concurrency"
    assert "environment variable CONFIGS_EXECUTORS_SLEEP_CONCURRENCY" in str(caught.value)


def test_deferred_tries_wait_a_jittered_moment() -> None:
    delays = {defer_delay() for _ in range(50)}

    assert all(DEFER_MIN_S <= d <= DEFER_MAX_S for d in delays)
    assert len(delays) > 1
