"""Polling for a condition with a deadline, for tests that watch other processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Call `predicate` until it returns a truthy value and return that value.

    Raises AssertionError with `message` (a string, or a callable producing one, so it can
    describe the last state seen) when `timeout` seconds pass first. Exceptions raised by the
    predicate propagate: a broken check should fail loudly, not look like a slow one.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g}s: {text}")
        time.sleep(interval)
