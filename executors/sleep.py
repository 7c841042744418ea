"""The `sleep` executor: sleeps `payload.seconds`, for demos and benchmarks."""

from __future__ import annotations

import math
import threading

from executors.base import Executor, JobRun, PermanentError, Stopped

# The longest wait threading allows; a longer one is not a duration anyone means.
MAX_SECONDS = threading.TIMEOUT_MAX


class SleepExecutor(Executor):
    """Sleeps for `seconds` (a non-negative number, default 0), then succeeds.

    Told to stop (cancel, time limit), it wakes at once and raises Stopped.
    """

    task = "sleep"

    def execute(self, run: JobRun) -> None:
        if run.wait(self.seconds(run)):
            raise Stopped("told to stop while sleeping")

    @staticmethod
    def seconds(run: JobRun) -> float:
        """The validated `payload.seconds`; PermanentError when it is not a usable duration."""
        value = run.payload.get("seconds", 0)
        # bool is an int subclass, but `true` seconds is a payload mistake, not one second
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PermanentError(f"payload.seconds must be a number, got {type(value).__name__}")
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float, e.g. 10**400
            raise PermanentError("payload.seconds is out of range") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise PermanentError(f"payload.seconds must be a finite number >= 0, got {value}")
        if seconds > MAX_SECONDS:
            raise PermanentError(f"payload.seconds is out of range (at most {MAX_SECONDS:.0f})")
        return seconds
