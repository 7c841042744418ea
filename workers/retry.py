"""Retry as a value: the policy decides whether and when a run is tried again."""

from __future__ import annotations

import random
from dataclasses import dataclass

from jobexec.core.config import Settings
from jobexec.core.sections import RetrySection


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    initial_backoff: float
    max_backoff: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        retry = RetrySection.from_settings(settings)
        return cls(retry.max_attempts, retry.initial_backoff, retry.max_backoff)

    def exhausted(self, attempt: int) -> bool:
        """True when the try `attempt` was the last one allowed."""
        return attempt >= self.max_attempts

    def backoff(self, attempt: int) -> float:
        """Delay before try `attempt + 1`: exponential, capped, with equal jitter.

        Half the delay is fixed so a retry never fires at once; half is random so a burst of
        failures does not retry in lockstep.
        """
        doublings = min(attempt - 1, 62)  # past this every delay is the cap; no float overflow
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0**doublings)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Delay before try `attempt + 1`: the backoff, or longer when the server asked for it
        (`Retry-After`), never past the cap."""
        backoff = self.backoff(attempt)
        if retry_after is None or retry_after <= backoff:
            return backoff
        return min(retry_after, self.max_backoff)
