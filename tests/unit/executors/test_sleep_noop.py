"""The sleep and noop executors."""

from __future__ import annotations

import time
from typing import Any

import pytest

from executors import JobRun, PermanentError
from executors.noop import NoopExecutor
from executors.sleep import SleepExecutor
from jobexec.config import Settings

SETTINGS = Settings.load({})


def run_of(payload: dict[str, Any]) -> JobRun:
    return JobRun("job_1", 1, "run-1", payload)


def test_given_a_noop_run_when_executed_then_it_succeeds_at_once() -> None:
    executor = NoopExecutor(SETTINGS)
    run = run_of({"task": "noop"})

    assert executor.supports(run)
    executor.execute(run)


def test_given_a_sleep_run_when_executed_then_it_takes_the_given_seconds() -> None:
    started = time.monotonic()

    SleepExecutor(SETTINGS).execute(run_of({"task": "sleep", "seconds": 0.1}))

    assert time.monotonic() - started >= 0.1


def test_given_no_seconds_when_a_sleep_run_is_executed_then_it_returns_at_once() -> None:
    started = time.monotonic()

    SleepExecutor(SETTINGS).execute(run_of({"task": "sleep"}))

    assert time.monotonic() - started < 0.1


@pytest.mark.parametrize("seconds", [-1, "3", None, True, float("nan"), float("inf")])
def test_given_bad_seconds_when_a_sleep_run_is_executed_then_it_fails_permanently(
    seconds: Any,
) -> None:
    with pytest.raises(PermanentError, match=r"payload\.seconds"):
        SleepExecutor(SETTINGS).execute(run_of({"task": "sleep", "seconds": seconds}))


def test_given_a_run_for_another_task_when_asked_then_the_executor_does_not_support_it() -> None:
    assert not SleepExecutor(SETTINGS).supports(run_of({"task": "noop"}))
    assert not NoopExecutor(SETTINGS).supports(run_of({"seconds": 1}))
