"""Cron expressions of recurring jobs: 6-field Spring (seconds first) or 5-field Unix, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter


class InvalidCron(ValueError):
    """The job's cron expression cannot be evaluated."""


def _fields(expression: str) -> tuple[str, bool]:
    fields = expression.split()
    if len(fields) == 6:
        # Spring puts seconds first; croniter wants them last. Spring's '?' means '*'.
        return " ".join([*fields[1:], fields[0]]).replace("?", "*"), True
    if len(fields) == 5:
        return expression.replace("?", "*"), False
    raise InvalidCron(f"cron expression {expression!r} has {len(fields)} fields, not 5 or 6")


def next_fire_time(expression: str | None, after: datetime) -> datetime:
    """The first fire time strictly after `after`: missed fires are not replayed."""
    if not expression:
        raise InvalidCron("recurring job has no cron expression")
    text, with_seconds = _fields(expression.strip())
    start = after.astimezone(UTC) if after.tzinfo else after.replace(tzinfo=UTC)
    try:
        # Spring fires when day-of-month AND day-of-week match; Unix cron when either does.
        itr = croniter(text, start, day_or=not with_seconds)
        result = itr.get_next(datetime)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCron(f"cron expression {expression!r} is invalid: {exc}") from None
    if not isinstance(result, datetime):
        raise InvalidCron(f"cron expression {expression!r} gives no fire time")
    return result.astimezone(UTC)


def validate(expression: str) -> None:
    next_fire_time(expression, datetime.now(UTC))
