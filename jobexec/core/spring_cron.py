"""Spring's CronExpression: six fields, seconds first, and its day fields' Quartz forms.

croniter evaluates the time of day (seconds, minutes, hours); the days are found here, month by
month, because croniter lacks Spring's `L-n`, `LW`, `dL` and `DDDL` forms. Spring's rules:
day-of-month AND day-of-week must both match; in day-of-week 0 and 7 are Sunday; `?` is `*`.

- day-of-month: `L` (last day), `L-3` (third-to-last), `LW` (last weekday), `15W` (the weekday
  nearest the 15th, within the month), numbers, ranges, steps, lists.
- day-of-week: `MON-FRI`, `5L` or `FRIL` (last Friday), `MON#2` (second Monday), numbers 0-7.
- month: 1-12 or `JAN`-`DEC`.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date, datetime, time, timedelta

from croniter import croniter

MACROS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
# Spring searches this far ahead before it calls an expression one that never fires.
_SEARCH_MONTHS = 400 * 12

DaySet = Callable[[int, int], set[int]]  # (year, month) -> days of that month that match


class SpringCronError(ValueError):
    """The expression is not a valid Spring cron expression."""


def _number(text: str, names: dict[str, int], low: int, high: int, field: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit() or not low <= int(text) <= high:
        raise SpringCronError(f"{field} value {text!r} is not in {low}-{high}")
    return int(text)


def _standard(token: str, names: dict[str, int], low: int, high: int, field: str) -> set[int]:
    """`*`, `n`, `a-b`, with an optional `/step`, as in every cron field."""
    base, _, step_text = token.partition("/")
    step = _number(step_text, {}, 1, high, field) if step_text else 1
    if base in {"*", "?"}:
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = (_number(x, names, low, high, field) for x in (first, last))
        if start > end:
            raise SpringCronError(f"{field} range {base!r} runs backwards")
    else:
        start = _number(base, names, low, high, field)
        end = high if step_text else start
    return set(range(start, end + 1, step))


def _weekday_nearest(year: int, month: int, day: int) -> int | None:
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return None
    weekday = date(year, month, day).weekday()  # Monday 0 .. Sunday 6
    if weekday == 5:  # Saturday: the Friday before, or the Monday after on the 1st
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, or the Friday before on the last day
        return day + 1 if day < last else day - 2
    return day


def _day_of_month_token(token: str) -> DaySet:
    upper = token.upper()
    if upper == "L":
        return lambda y, m: {calendar.monthrange(y, m)[1]}
    if upper.startswith("L-"):
        offset = _number(upper[2:], {}, 0, 30, "day-of-month")

        def before_last(y: int, m: int) -> set[int]:
            day = calendar.monthrange(y, m)[1] - offset
            return {day} if day >= 1 else set()

        return before_last
    if upper == "LW":

        def last_weekday(y: int, m: int) -> set[int]:
            found = _weekday_nearest(y, m, calendar.monthrange(y, m)[1])
            return {found} if found else set()

        return last_weekday
    if upper.endswith("W"):
        day = _number(upper[:-1], {}, 1, 31, "day-of-month")

        def nearest(y: int, m: int) -> set[int]:
            found = _weekday_nearest(y, m, day)
            return {found} if found else set()

        return nearest
    days = _standard(token, {}, 1, 31, "day-of-month")
    return lambda y, m: {d for d in days if d <= calendar.monthrange(y, m)[1]}


def _spring_weekday(text: str) -> int:
    """Spring's day-of-week number (0 and 7 Sunday) as Python's (Monday 0, Sunday 6)."""
    return (_number(text, _DAYS, 0, 7, "day-of-week") - 1) % 7


def _days_of(y: int, m: int, weekday: int) -> list[int]:
    return [
        d for d in range(1, calendar.monthrange(y, m)[1] + 1) if date(y, m, d).weekday() == weekday
    ]


def _day_of_week_token(token: str) -> DaySet:
    upper = token.upper()
    if "#" in upper:
        day_text, _, nth_text = upper.partition("#")
        weekday = _spring_weekday(day_text)
        nth = _number(nth_text, {}, 1, 5, "day-of-week")

        def nth_weekday(y: int, m: int) -> set[int]:
            days = _days_of(y, m, weekday)
            return {days[nth - 1]} if len(days) >= nth else set()

        return nth_weekday
    if upper.endswith("L") and len(upper) > 1:
        weekday = _spring_weekday(upper[:-1])
        return lambda y, m: {_days_of(y, m, weekday)[-1]}
    numbers = _standard(token, _DAYS, 0, 7, "day-of-week")
    weekdays = {(n - 1) % 7 for n in numbers}
    return lambda y, m: {
        d for d in range(1, calendar.monthrange(y, m)[1] + 1) if date(y, m, d).weekday() in weekdays
    }


def _union(parts: list[DaySet]) -> DaySet:
    return lambda y, m: set().union(*(part(y, m) for part in parts))


class SpringCron:
    """One parsed Spring cron expression; `next_after` gives its next fire time."""

    def __init__(self, expression: str) -> None:
        text = MACROS.get(expression.strip().lower(), expression)
        fields = text.split()
        if len(fields) != 6:
            raise SpringCronError(f"has {len(fields)} fields, not 6")
        second, minute, hour, day_of_month, month, day_of_week = fields
        self._time_of_day = f"{minute} {hour} * * * {second}"
        if not croniter.is_valid(self._time_of_day):
            raise SpringCronError("has an invalid second, minute or hour field")
        self._months = set().union(
            *(_standard(t, _MONTHS, 1, 12, "month") for t in month.split(","))
        )
        self._dom = _union([_day_of_month_token(t) for t in day_of_month.split(",")])
        self._dow = _union([_day_of_week_token(t) for t in day_of_week.split(",")])

    def days(self, year: int, month: int) -> list[int]:
        """The days of one month on which the expression fires."""
        if month not in self._months:
            return []
        return sorted(self._dom(year, month) & self._dow(year, month))

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after `after` (an aware datetime)."""
        year, month = after.year, after.month
        for _ in range(_SEARCH_MONTHS):
            for day in self.days(year, month):
                candidate_day = date(year, month, day)
                if candidate_day < after.date():
                    continue
                midnight = datetime.combine(candidate_day, time(), after.tzinfo)
                start = after if candidate_day == after.date() else midnight - timedelta(seconds=1)
                fire = croniter(self._time_of_day, start).get_next(datetime)
                if isinstance(fire, datetime) and fire.date() == candidate_day:
                    return fire
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        raise SpringCronError("never fires")
