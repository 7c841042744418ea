"""JobEvent records and dead-letter header names, taken from the code that writes them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from jobexec.core.deadletter import (
    DLT_HEADERS,
    EXCEPTION_FQCN,
    EXCEPTION_MESSAGE,
    ORIGINAL_OFFSET,
    ORIGINAL_PARTITION,
    ORIGINAL_SIZE_HEADER,
    ORIGINAL_TOPIC,
)
from jobexec.core.events import JobEvent

__all__ = [
    "DLT_HEADERS",
    "EXCEPTION_FQCN",
    "EXCEPTION_MESSAGE",
    "ORIGINAL_OFFSET",
    "ORIGINAL_PARTITION",
    "ORIGINAL_SIZE_HEADER",
    "ORIGINAL_TOPIC",
    "event_record",
    "job_event",
]


def job_event(job_id: str, attempt: int = 1, scheduled_at: datetime | float | None = None) -> bytes:
    """A JobEvent's value as the scheduler writes it; `scheduled_at` (epoch seconds or a
    datetime) defaults to now."""
    when = time.time() if scheduled_at is None else scheduled_at
    at = when if isinstance(when, datetime) else datetime.fromtimestamp(when, UTC)
    return JobEvent(job_id, attempt, at).to_json()


def event_record(job_id: str, attempt: int = 1) -> tuple[bytes, bytes]:
    """A JobEvent record as the scheduler publishes it: key = job id, value = `job_event`."""
    return job_id.encode(), job_event(job_id, attempt)
