"""Cron of recurring jobs: 6-field Spring (seconds first) or 5-field Unix, always UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from jobexec.cron import InvalidCron, next_fire_time, validate

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
