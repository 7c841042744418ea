"""The executor strategy: a run of a job, the executor interface and the errors it raises."""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jobexec.core.config import Settings


@dataclass(frozen=True)
class JobRun:
    """One try of one run of a job, as an executor sees it."""

    job_id: str
    attempt: int  # try number of this run, 1-based
    run_id: str  # same for every try of one run: used as the Idempotency-Key
    payload: Mapping[str, Any]
    # Set when the try must end: its job was cancelled, or it ran past its time limit.
    stop: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)
    # time.monotonic() by which the try must have ended; None when it has no limit.
    deadline: float | None = None

    @property
    def task(self) -> str | None:
        """`payload.task`, the executor the job asks for; None when absent or not text."""
        task = self.payload.get("task")
        return task if isinstance(task, str) else None

    def stop_requested(self) -> bool:
        """Whether the try has been told to stop; a long executor checks it between steps."""
        return self.stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking at once when told to stop; True when told to stop."""
        return self.stop.wait(max(0.0, seconds))

    def remaining(self) -> float | None:
        """Seconds left before the time limit (never negative); None when there is none."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


class ExecutorError(Exception):
    """An executor could not complete a run; `str(exc)` is the reason recorded on the job."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(ExecutorError):
    """The run may succeed later (timeout, connection error, HTTP 408/429/5xx): retry it.

    `retry_after` (seconds) is the least the next try must wait, as a server's `Retry-After`
    asks; the retry policy still caps it at `configs.retry.max-backoff-ms`.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(ExecutorError):
    """The run cannot succeed (bad payload, HTTP 4xx, host not allowed): fail it for good."""


class Stopped(ExecutorError):
    """The executor stopped because `JobRun.stop` was set; the worker records why
    (the job was cancelled, or the try ran past its time limit)."""


class Executor(ABC):
    """Executes the jobs whose `payload.task` it supports.

    Subclasses set `task`, take what they need from the settings in `__init__`, and implement
    `execute`, which returns on success and raises TransientError or PermanentError otherwise.
    """

    task: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def supports(self, run: JobRun) -> bool:
        """Whether this executor handles the run; by default, when `payload.task` is `task`."""
        return run.task == self.task

    @abstractmethod
    def execute(self, run: JobRun) -> None:
        """Run the job once; raise TransientError to be retried, PermanentError to fail."""

    def close(self) -> None:
        """Release held resources (connections, clients); called once at worker shutdown."""
        return None
