"""The sleep and noop executors."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from executors import JobRun, PermanentError, Stopped
from executors.noop import NoopExecutor
from executors.sleep import SleepExecutor
from jobexec.core.config import Settings

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


@pytest.mark.parametrize(
    "seconds", [-1, "3", None, True, float("nan"), float("inf"), 10**400, 1e300, 2**63]
)
def test_given_bad_seconds_when_a_sleep_run_is_executed_then_it_fails_permanently(
    seconds: Any,
) -> None:
    with pytest.raises(PermanentError, match=r"payload\.seconds"):
        SleepExecutor(SETTINGS).execute(run_of({"task": "sleep", "seconds": seconds}))


def test_given_a_run_for_another_task_when_asked_then_the_executor_does_not_support_it() -> None:
    assert not SleepExecutor(SETTINGS).supports(run_of({"task": "noop"}))
    assert not NoopExecutor(SETTINGS).supports(run_of({"seconds": 1}))


def test_given_a_long_sleep_when_told_to_stop_then_it_raises_stopped_within_a_second() -> None:
    # Given a sleep of an hour
    run = run_of({"task": "sleep", "seconds": 3600})
    stopper = threading.Timer(0.2, run.stop.set)
    stopper.start()
    started = time.monotonic()

    # When it is told to stop after 0.2 s, then it raises Stopped, within the contract's 1 s
    with pytest.raises(Stopped):
        SleepExecutor(SETTINGS).execute(run)
    assert time.monotonic() - started < 0.2 + 1.0
    stopper.join()


def test_given_a_stopped_run_when_noop_executes_it_then_it_raises_stopped() -> None:
    run = run_of({"task": "noop"})
    run.stop.set()

    with pytest.raises(Stopped):
        NoopExecutor(SETTINGS).execute(run)
