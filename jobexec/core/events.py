"""JobEvent: the Kafka record that asks for one try of a job's run (README: JobEvent)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Epoch values above this are milliseconds: 1e11 seconds is the year 5138.
_EPOCH_MILLIS_THRESHOLD = 1e11
# attempt is a Java int on the other side of the topic.
MAX_ATTEMPT = 2**31 - 1
# The jobs table's job_id is a varchar(255) in the neighbouring services' schema.
MAX_JOB_ID_CHARS = 255
# A JobEvent is a flat object; unknown fields may nest a little, never like a stack-smasher.
MAX_JSON_DEPTH = 32

# A JSON string, escapes included, possibly unterminated. Possessive: it never backtracks, so
# stripping strings is linear for any input.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
# Keep only the brackets, all as `[` and `]`: a mismatch is the parser's to refuse.
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")
_NOT_A_BRACKET = bytes(set(range(256)) - set(b"[]{}"))


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a record sits in Kafka: what the bridge commits and what a dead letter names."""

    topic: str
    partition: int
    offset: int


class PoisonRecord(ValueError):
    """The record is not a JobEvent; it belongs on the dead-letter topic."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    job_id: str
    attempt: int
    scheduled_at: datetime | None

    @classmethod
    def parse(cls, value: bytes | None) -> JobEvent:
        """Validate a record value at the edge; anything else, whatever the bytes, is a
        PoisonRecord (no other exception escapes)."""
        if value is None:
            raise PoisonRecord("record has no value")
        try:
            text = value.decode("utf-8")  # UTF-8 by the event format; json would guess
        except UnicodeDecodeError as exc:
            raise PoisonRecord(f"value is not UTF-8 JSON: {exc}") from None
        check_depth(value)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PoisonRecord(f"value is not UTF-8 JSON: {exc}") from None
        except RecursionError:  # only where the stack is smaller than MAX_JSON_DEPTH needs
            raise PoisonRecord("value nests too deeply") from None
        except ValueError as exc:  # an integer of more than 4,300 digits
            raise PoisonRecord(f"value holds a number out of range: {exc}") from None
        if not isinstance(data, dict):
            raise PoisonRecord(f"value is a JSON {type(data).__name__}, not an object")
        return cls.parse_fields(data.get("jobId"), data.get("attempt", 1), data.get("scheduledAt"))

    @classmethod
    def parse_fields(cls, job_id: object, attempt: object, scheduled_at: object) -> JobEvent:
        """Validate the three fields, wherever they arrive from (a record or a task's kwargs)."""
        return cls(parse_job_id(job_id), parse_attempt(attempt), parse_scheduled_at(scheduled_at))

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"jobId": self.job_id, "attempt": self.attempt}
        if self.scheduled_at is not None:
            body["scheduledAt"] = self.scheduled_at.isoformat()
        return json.dumps(body).encode()


def check_depth(value: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """Refuse JSON that nests deeper than `limit`, outer object included, without recursion.

    The brackets outside strings are kept and the innermost pairs removed, one level per pass:
    what is left after `limit` passes nests deeper (or does not match, which is not JSON
    either). Byte operations only: 100,000 `[` cost a scan, not a RecursionError.
    """
    if value.count(b"[") + value.count(b"{") <= limit:
        return  # a flat JobEvent: nothing to count
    brackets = _JSON_STRING.sub(b"", value).translate(_AS_SQUARE, _NOT_A_BRACKET)
    if b"[" * (limit + 1) in brackets:
        raise PoisonRecord(f"value nests deeper than {limit} levels")  # the common attack, fast
    for _ in range(limit):
        inner = brackets.replace(b"[]", b"")  # one pass: the innermost pairs only
        if not inner:
            return
        if len(inner) == len(brackets):
            break  # no pair left to remove: unbalanced
        brackets = inner
    raise PoisonRecord(f"value nests deeper than {limit} levels or its brackets do not match")


def parse_job_id(raw: object) -> str:
    """A non-empty string of valid Unicode (it encodes to UTF-8), at most 255 characters."""
    if not isinstance(raw, str) or not raw.strip():
        raise PoisonRecord("jobId is missing or not a non-empty string")
    if len(raw) > MAX_JOB_ID_CHARS:
        raise PoisonRecord(f"jobId has {len(raw)} characters, more than {MAX_JOB_ID_CHARS}")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise PoisonRecord("jobId is not valid Unicode text (a lone surrogate)") from None
    return raw


def parse_attempt(raw: object) -> int:
    """A whole number from 1 to 2147483647 (a Java int)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_ATTEMPT:
        raise PoisonRecord(f"attempt is not a whole number from 1 to {MAX_ATTEMPT}")
    return raw


def parse_scheduled_at(raw: object) -> datetime | None:
    """ISO-8601 text, epoch seconds (with a fraction) or epoch milliseconds."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise PoisonRecord("scheduledAt is a boolean")
    if isinstance(raw, int | float):
        try:
            seconds = raw / 1000 if raw > _EPOCH_MILLIS_THRESHOLD else raw
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise PoisonRecord("scheduledAt is out of range") from None
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise PoisonRecord(f"scheduledAt {raw[:64]!r} is not ISO-8601") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise PoisonRecord(f"scheduledAt has type {type(raw).__name__}")
