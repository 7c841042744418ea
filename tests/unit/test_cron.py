"""Cron of recurring jobs: 6-field Spring (seconds first) or 5-field Unix, always UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobexec.core.cron import InvalidCron, next_fire_time, validate

NOON = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 */5 * * * *", datetime(2025, 1, 1, 12, 5, tzinfo=UTC)),
        ("30 0 12 * * ?", datetime(2025, 1, 1, 12, 0, 30, tzinfo=UTC)),
        ("0 0 9 * * MON-FRI", datetime(2025, 1, 2, 9, 0, tzinfo=UTC)),
        ("0 0 0 1 * ?", datetime(2025, 2, 1, tzinfo=UTC)),
        ("0 0 9 ? * SUN", datetime(2025, 1, 5, 9, 0, tzinfo=UTC)),
        ("0 0 9 * * 7", datetime(2025, 1, 5, 9, 0, tzinfo=UTC)),  # Spring: 7 is Sunday too
        ("*/10 * * * * *", datetime(2025, 1, 1, 12, 0, 10, tzinfo=UTC)),
    ],
)
def test_six_field_spring_expression_has_seconds_first(expression: str, expected: datetime) -> None:
    assert next_fire_time(expression, NOON) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("*/5 * * * *", datetime(2025, 1, 1, 12, 5, tzinfo=UTC)),
        ("0 12 * * *", datetime(2025, 1, 2, 12, 0, tzinfo=UTC)),
        ("15 14 1 * *", datetime(2025, 1, 1, 14, 15, tzinfo=UTC)),
        ("0 9 * * 1-5", datetime(2025, 1, 2, 9, 0, tzinfo=UTC)),
        ("0 0 * * 0", datetime(2025, 1, 5, tzinfo=UTC)),
    ],
)
def test_five_field_unix_expression(expression: str, expected: datetime) -> None:
    assert next_fire_time(expression, NOON) == expected


def test_spring_day_of_month_and_day_of_week_must_both_match() -> None:
    # Spring's CronExpression requires every field to match: this is Friday the 13th only,
    # not "every Friday and every 13th" as in Vixie cron.
    assert next_fire_time("0 0 0 13 * FRI", NOON) == datetime(2025, 6, 13, tzinfo=UTC)


def test_unix_day_of_month_or_day_of_week_matches() -> None:
    # Vixie cron: a restricted day-of-month and day-of-week fire on either.
    assert next_fire_time("0 0 13 * 5", NOON) == datetime(2025, 1, 3, tzinfo=UTC)


def test_fire_time_is_strictly_after_the_given_instant() -> None:
    assert next_fire_time("0 0 12 * * *", NOON) == NOON + timedelta(days=1)
    assert next_fire_time("0 12 * * *", NOON) == NOON + timedelta(days=1)
    assert next_fire_time("* * * * * *", NOON) == NOON + timedelta(seconds=1)


def test_fraction_of_a_second_does_not_fire_in_the_past() -> None:
    after = NOON + timedelta(microseconds=500_000)

    assert next_fire_time("* * * * * *", after) == NOON + timedelta(seconds=1)
    assert next_fire_time("* * * * *", after) == NOON + timedelta(minutes=1)


def test_missed_fires_are_not_replayed() -> None:
    # Given a job that fires hourly and last ran a day and a half ago
    now = datetime(2025, 3, 10, 8, 45, 12, tzinfo=UTC)

    # When the next run is computed after now
    result = next_fire_time("0 0 * * * *", now)

    # Then it is the next hour after now, not one of the hours missed in between
    assert result == datetime(2025, 3, 10, 9, 0, tzinfo=UTC)


def test_result_is_in_utc_whatever_the_offset_of_after() -> None:
    after = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))  # 12:00 UTC

    result = next_fire_time("0 30 * * * *", after)

    assert result == datetime(2025, 1, 1, 12, 30, tzinfo=UTC)
    assert result.utcoffset() == timedelta(0)


def test_naive_after_is_taken_as_utc() -> None:
    result = next_fire_time("0 30 12 * * *", datetime(2025, 1, 1, 12, 0))

    assert result == datetime(2025, 1, 1, 12, 30, tzinfo=UTC)


def test_surrounding_whitespace_is_ignored() -> None:
    assert next_fire_time("  0 0 12 * * ?  ", NOON) == NOON + timedelta(days=1)


@pytest.mark.parametrize(
    "expression",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("* * * *", id="four-fields"),
        pytest.param("0 0 12 * * ? 2025", id="seven-fields"),
        pytest.param("60 * * * * *", id="second-out-of-range"),
        pytest.param("0 60 * * * *", id="minute-out-of-range"),
        pytest.param("0 0 25 * * *", id="hour-out-of-range"),
        pytest.param("0 0 0 32 * *", id="day-out-of-range"),
        pytest.param("0 0 0 1 13 *", id="month-out-of-range"),
        pytest.param("61 * * * *", id="unix-minute-out-of-range"),
        pytest.param("a b c d e", id="garbage-five"),
        pytest.param("every day at noon", id="prose"),
        pytest.param("0 0 0 30 2 ?", id="never-fires"),
    ],
)
def test_invalid_expression_raises_invalid_cron(expression: str | None) -> None:
    with pytest.raises(InvalidCron):
        next_fire_time(expression, NOON)


def test_invalid_cron_is_a_value_error_naming_the_expression() -> None:
    with pytest.raises(ValueError, match="0 0 25"):
        validate("0 0 25 * * *")


def test_validate_accepts_a_valid_expression() -> None:
    validate("0 0/15 * * * ?")
    validate("*/15 * * * *")


# --- Spring's macros and Quartz day forms ------------------------------------------------------


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@yearly", utc(2026, 1, 1)),
        ("@annually", utc(2026, 1, 1)),
        ("@monthly", utc(2025, 2, 1)),
        ("@weekly", utc(2025, 1, 5)),  # Sunday midnight
        ("@daily", utc(2025, 1, 2)),
        ("@midnight", utc(2025, 1, 2)),
        ("@hourly", utc(2025, 1, 1, 13)),
        ("@DAILY", utc(2025, 1, 2)),
    ],
)
def test_spring_macro(macro: str, expected: datetime) -> None:
    assert next_fire_time(macro, NOON) == expected


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # L: the last day of the month, February of leap and common years included.
        ("0 0 0 L * ?", utc(2024, 2, 1), utc(2024, 2, 29)),
        ("0 0 0 L * ?", utc(2025, 2, 1), utc(2025, 2, 28)),
        ("0 0 0 L * ?", utc(2025, 4, 30, 0, 0, 1), utc(2025, 5, 31)),
        ("0 0 0 L 2 ?", utc(2100, 1, 1), utc(2100, 2, 28)),  # 2100 is not a leap year
        ("0 0 0 L 2 ?", utc(2000, 1, 1), utc(2000, 2, 29)),  # 2000 is
        # L-n: n days before the last.
        ("0 0 0 L-3 * ?", utc(2024, 2, 1), utc(2024, 2, 26)),
        ("0 0 0 L-3 * ?", utc(2025, 2, 1), utc(2025, 2, 25)),
        # LW: the last weekday; 2024-03-31 is a Sunday, 2024-08-31 a Saturday.
        ("0 0 0 LW * ?", utc(2024, 3, 1), utc(2024, 3, 29)),
        ("0 0 0 LW * ?", utc(2024, 8, 1), utc(2024, 8, 30)),
        ("0 0 0 LW * ?", utc(2024, 7, 1), utc(2024, 7, 31)),  # a Wednesday
        # nW: the weekday nearest the nth, never in another month.
        ("0 0 0 15W * ?", utc(2024, 6, 1), utc(2024, 6, 14)),  # 15th a Saturday: Friday
        ("0 0 0 15W * ?", utc(2024, 9, 1), utc(2024, 9, 16)),  # 15th a Sunday: Monday
        ("0 0 0 1W * ?", utc(2024, 5, 31), utc(2024, 6, 3)),  # 1st a Saturday: Monday the 3rd
        # dL / DDDL: the last such weekday of the month.
        ("0 0 0 ? * 5L", NOON, utc(2025, 1, 31)),
        ("0 0 0 ? * FRIL", utc(2025, 2, 1), utc(2025, 2, 28)),
        ("0 0 0 ? * 0L", utc(2024, 2, 1), utc(2024, 2, 25)),  # 0 is Sunday
        # d#n: the nth such weekday of the month.
        ("0 0 0 ? * MON#2", NOON, utc(2025, 1, 13)),
        ("0 0 0 ? * 1#1", NOON, utc(2025, 1, 6)),
        ("0 0 0 ? * 7#1", NOON, utc(2025, 1, 5)),  # 7 is Sunday too
        ("0 0 0 ? * FRI#5", NOON, utc(2025, 1, 31)),
        ("0 0 0 ? * FRI#5", utc(2025, 2, 1), utc(2025, 5, 30)),  # months without a 5th skip
        # Names in month and day-of-week, ranges and steps.
        ("0 30 9 ? JAN-MAR MON-FRI", utc(2025, 3, 31, 10), utc(2026, 1, 1, 9, 30)),
        ("0 0 0 1 jan ?", NOON, utc(2026, 1, 1)),
        ("0 0 12 ? * SAT,SUN", NOON, utc(2025, 1, 4, 12)),
        ("0 0 0 1/10 * ?", NOON, utc(2025, 1, 11)),
        # Month ends and leap days with both day fields (Spring: both must match).
        ("0 0 0 31 * ?", utc(2025, 4, 1), utc(2025, 5, 31)),
        ("0 0 0 29 2 ?", utc(2024, 3, 1), utc(2028, 2, 29)),
        ("0 0 0 29 2 MON", utc(2025, 1, 1), utc(2044, 2, 29)),
        ("0 0 0 L * FRI", NOON, utc(2025, 1, 31)),
        # Time of day on the matching day: later today, or the first time on a later day.
        ("0 0 6,18 L * ?", utc(2025, 1, 31, 12), utc(2025, 1, 31, 18)),
        ("0 0 6,18 L * ?", utc(2025, 1, 31, 19), utc(2025, 2, 28, 6)),
    ],
)
def test_spring_quartz_day_forms(expression: str, after: datetime, expected: datetime) -> None:
    assert next_fire_time(expression, after) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "@fortnightly",
        "0 0 0 L-31 * ?",
        "0 0 0 ? * 8",
        "0 0 0 ? * MON#6",
        "0 0 0 ? * XYZL",
        "0 0 0 32W * ?",
        "0 0 0 5-1 * ?",
        "0 0 0 ? FOO *",
    ],
)
def test_invalid_spring_forms_raise_invalid_cron(expression: str) -> None:
    with pytest.raises(InvalidCron):
        next_fire_time(expression, NOON)
