"""The `sleep` executor: sleeps `payload.seconds`, for demos and benchmarks."""

from __future__ import annotations

import math
import time

from executors.base import Executor, JobRun, PermanentError


class SleepExecutor(Executor):
    """Sleeps for `seconds` (a non-negative number, default 0), then succeeds."""

    task = "sleep"

    def execute(self, run: JobRun) -> None:
        time.sleep(self.seconds(run))

    @staticmethod
    def seconds(run: JobRun) -> float:
        """The validated `payload.seconds`; PermanentError when it is not a usable duration."""
        value = run.payload.get("seconds", 0)
        # bool is an int subclass, but `true` seconds is a payload mistake, not one second
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PermanentError(f"payload.seconds must be a number, got {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise PermanentError(f"payload.seconds must be a finite number >= 0, got {value}")
        return float(value)
