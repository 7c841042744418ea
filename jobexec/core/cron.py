"""Cron expressions of recurring jobs: 6-field Spring (seconds first) or 5-field Unix, in UTC.

Spring's expressions, its macros (`@daily`, `@hourly`...) and its day forms (`L`, `W`, `#`) are
evaluated by jobexec/core/spring_cron.py; 5-field Unix expressions by croniter, Vixie cron's rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

from croniter import croniter

from jobexec.core.spring_cron import MACROS, SpringCron, SpringCronError


class InvalidCron(ValueError):
    """The job's cron expression cannot be evaluated."""


def next_fire_time(expression: str | None, after: datetime) -> datetime:
    """The first fire time strictly after `after`: missed fires are not replayed."""
    if not expression or not expression.strip():
        raise InvalidCron("recurring job has no cron expression")
    text = expression.strip()
    start = after.astimezone(UTC) if after.tzinfo else after.replace(tzinfo=UTC)
    fields = text.split()
    if len(fields) == 6 or text.lower() in MACROS:
        try:
            return SpringCron(text).next_after(start).astimezone(UTC)
        except SpringCronError as exc:
            raise InvalidCron(f"cron expression {expression!r} is invalid: {exc}") from None
    if len(fields) != 5:
        raise InvalidCron(f"cron expression {expression!r} has {len(fields)} fields, not 5 or 6")
    try:
        # Unix cron fires when day-of-month OR day-of-week matches.
        result = croniter(text.replace("?", "*"), start, day_or=True).get_next(datetime)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCron(f"cron expression {expression!r} is invalid: {exc}") from None
    if not isinstance(result, datetime):
        raise InvalidCron(f"cron expression {expression!r} gives no fire time")
    return result.astimezone(UTC)


def validate(expression: str) -> None:
    next_fire_time(expression, datetime.now(UTC))
