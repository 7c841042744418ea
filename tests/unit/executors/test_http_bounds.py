"""The http executor's bounds around name resolution, with a resolver that never answers:
nothing is connected and no traffic is sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from executors import JobRun, Stopped, TransientError
from executors.http import HttpExecutor
from jobexec.core.config import Settings


class HangingResolver:
    """A DNS server that never answers (until the test ends)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.lookups = 0

    def __call__(self, host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        self.lookups += 1
        self.released.wait(30)
        raise OSError("the test ended")


@pytest.fixture
def hanging() -> Iterator[tuple[HttpExecutor, HangingResolver]]:
    resolver = HangingResolver()
    executor = HttpExecutor(Settings.load({}), resolver=resolver)
    yield executor, resolver
    resolver.released.set()
    executor.close()


def http_run(timeout: float) -> JobRun:
    payload = {"task": "http", "url": "http://slow-dns.example/", "timeout_seconds": timeout}
    return JobRun("job_1", 1, "run-1", payload)


def test_given_a_resolver_that_hangs_when_executed_then_the_timeout_bounds_the_call(
    hanging: tuple[HttpExecutor, HangingResolver],
) -> None:
    executor, resolver = hanging

    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out after 1s"):
        executor.execute(http_run(timeout=1))

    assert time.monotonic() - started < 1 + 0.5
    assert resolver.lookups == 1


def test_given_a_resolver_that_hangs_when_stop_is_set_then_it_is_aborted_within_a_second(
    hanging: tuple[HttpExecutor, HangingResolver],
) -> None:
    executor, _resolver = hanging
    run = http_run(timeout=30)
    timer = threading.Timer(0.5, run.stop.set)

    timer.start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        executor.execute(run)

    assert time.monotonic() - started - 0.5 < 1.0
