"""JobEvent: the Kafka record that asks for one try of a job's run (contract section 4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Epoch values above this are milliseconds: 1e11 seconds is the year 5138.
_EPOCH_MILLIS_THRESHOLD = 1e11


class PoisonRecord(ValueError):
    """The record is not a JobEvent; it belongs on the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    job_id: str
    attempt: int
    scheduled_at: datetime | None

    @classmethod
    def parse(cls, value: bytes | None) -> JobEvent:
        """Validate a record value at the edge; anything else is a PoisonRecord."""
        if value is None:
            raise PoisonRecord("record has no value")
        try:
            data = json.loads(value.decode("utf-8"))  # UTF-8 by contract; json would guess
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PoisonRecord(f"value is not UTF-8 JSON: {exc}") from None
        if not isinstance(data, dict):
            raise PoisonRecord(f"value is a JSON {type(data).__name__}, not an object")
        return cls.parse_fields(data.get("jobId"), data.get("attempt", 1), data.get("scheduledAt"))

    @classmethod
    def parse_fields(cls, job_id: object, attempt: object, scheduled_at: object) -> JobEvent:
        """Validate the three fields, wherever they arrive from (a record or a task's kwargs)."""
        if not isinstance(job_id, str) or not job_id.strip():
            raise PoisonRecord("jobId is missing or not a non-empty string")
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise PoisonRecord("attempt is not a positive integer")
        return cls(job_id, attempt, parse_scheduled_at(scheduled_at))

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"jobId": self.job_id, "attempt": self.attempt}
        if self.scheduled_at is not None:
            body["scheduledAt"] = self.scheduled_at.isoformat()
        return json.dumps(body).encode()


def parse_scheduled_at(raw: object) -> datetime | None:
    """ISO-8601 text, epoch seconds (with a fraction) or epoch milliseconds."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise PoisonRecord("scheduledAt is a boolean")
    if isinstance(raw, int | float):
        seconds = raw / 1000 if raw > _EPOCH_MILLIS_THRESHOLD else raw
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise PoisonRecord(f"scheduledAt {raw!r} is out of range") from None
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise PoisonRecord(f"scheduledAt {raw!r} is not ISO-8601") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PoisonRecord(f"scheduledAt has type {type(raw).__name__}")
