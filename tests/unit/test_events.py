"""JobEvent: validated at the edge, anything that is not one is a poison record (contract 4)."""

from __future__ import annotations

import contextlib
import json
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from jobexec.core.events import MAX_JSON_DEPTH, JobEvent, PoisonRecord, parse_scheduled_at

# 1764380000.123 s after the epoch.
INSTANT = datetime(2025, 11, 29, 1, 33, 20, 123000, tzinfo=UTC)


def record(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_parses_the_contract_example() -> None:
    event = JobEvent.parse(b'{"jobId": "job_7f0c", "attempt": 2, "scheduledAt": 1764380000.123}')

    assert event == JobEvent("job_7f0c", 2, INSTANT)


def test_attempt_defaults_to_one_and_scheduled_at_to_none() -> None:
    event = JobEvent.parse(record(jobId="job_1"))

    assert event.attempt == 1
    assert event.scheduled_at is None


def test_unknown_fields_are_ignored() -> None:
    event = JobEvent.parse(record(jobId="job_1", attempt=1, tenant="acme", extra={"a": [1]}))

    assert event == JobEvent("job_1", 1, None)


# --- scheduledAt in its three forms ------------------------------------------------------------


@pytest.mark.parametrize(
    "scheduled_at",
    [
        "2025-11-29T01:33:20.123Z",
        "2025-11-29T03:33:20.123+02:00",
        "2025-11-28T20:33:20.123-05:00",
        "2025-11-29T01:33:20.123",  # naive text is UTC
        "2025-11-29T01:33:20.123000000Z",  # Java's Instant.toString may print nanoseconds
        1764380000.123,
        1764380000123,
        1764380000123.0,
    ],
)
def test_scheduled_at_forms_all_mean_the_same_instant(scheduled_at: object) -> None:
    event = JobEvent.parse(record(jobId="job_1", scheduledAt=scheduled_at))

    assert event.scheduled_at == INSTANT
    assert event.scheduled_at is not None
    assert event.scheduled_at.utcoffset() is not None


def test_epoch_seconds_with_nanosecond_fraction_is_accepted() -> None:
    # Jackson writes an Instant as decimal seconds with nine digits of fraction.
    event = JobEvent.parse(b'{"jobId": "job_1", "scheduledAt": 1764380000.123456789}')

    assert event.scheduled_at is not None
    expected = INSTANT.replace(microsecond=123457)
    assert abs(event.scheduled_at - expected) <= timedelta(microseconds=1)


def test_whole_epoch_seconds_are_seconds_not_milliseconds() -> None:
    assert parse_scheduled_at(1764380000) == INSTANT.replace(microsecond=0)


def test_naive_iso_text_is_taken_as_utc() -> None:
    parsed = parse_scheduled_at("2025-11-29T01:33:20")

    assert parsed == datetime(2025, 11, 29, 1, 33, 20, tzinfo=UTC)
    assert parsed is not None and parsed.utcoffset() == timedelta(0)


def test_offset_is_kept_as_the_same_instant() -> None:
    parsed = parse_scheduled_at("2025-11-29T03:33:20+02:00")

    assert parsed is not None
    assert parsed.utcoffset() == timedelta(hours=2)
    assert parsed == datetime(2025, 11, 29, 1, 33, 20, tzinfo=UTC)


# --- poison records ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"{not json", id="bad-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b'{"jobId": "job_\xff"}', id="non-utf8"),
        pytest.param(b"\xc3\x28", id="invalid-utf8-sequence"),
        pytest.param(b'[{"jobId": "job_1"}]', id="json-array"),
        pytest.param(b"42", id="json-number"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b'"job_1"', id="json-string"),
        pytest.param(b"{}", id="missing-jobId"),
        pytest.param(b'{"jobId": ""}', id="empty-jobId"),
        pytest.param(b'{"jobId": "   "}', id="blank-jobId"),
        pytest.param(b'{"jobId": 123}', id="numeric-jobId"),
        pytest.param(b'{"jobId": null}', id="null-jobId"),
        pytest.param(b'{"jobId": ["job_1"]}', id="list-jobId"),
        pytest.param(b'{"jobId": "job_1", "attempt": 0}', id="attempt-zero"),
        pytest.param(b'{"jobId": "job_1", "attempt": -1}', id="attempt-negative"),
        pytest.param(b'{"jobId": "job_1", "attempt": "1"}', id="attempt-string"),
        pytest.param(b'{"jobId": "job_1", "attempt": true}', id="attempt-bool"),
        pytest.param(b'{"jobId": "job_1", "attempt": 1.5}', id="attempt-float"),
        pytest.param(b'{"jobId": "job_1", "attempt": null}', id="attempt-null"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": true}', id="scheduledAt-bool"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": [1]}', id="scheduledAt-list"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": {}}', id="scheduledAt-object"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": "yesterday"}', id="scheduledAt-text"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": NaN}', id="scheduledAt-nan"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": Infinity}', id="scheduledAt-inf"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": 1e300}', id="scheduledAt-huge"),
    ],
)
def test_value_that_is_not_a_job_event_is_poison(value: bytes) -> None:
    with pytest.raises(PoisonRecord):
        JobEvent.parse(value)


def test_record_without_value_is_poison() -> None:
    with pytest.raises(PoisonRecord):
        JobEvent.parse(None)


def test_utf16_encoded_value_is_poison() -> None:
    # The contract says UTF-8 JSON; json.loads(bytes) would silently sniff UTF-16 too.
    value = json.dumps({"jobId": "job_1", "attempt": 1}).encode("utf-16")

    with pytest.raises(PoisonRecord):
        JobEvent.parse(value)


def test_poison_record_is_a_value_error_with_a_reason() -> None:
    with pytest.raises(ValueError, match="attempt"):
        JobEvent.parse(b'{"jobId": "job_1", "attempt": 0}')


def test_parse_fields_validates_task_kwargs_the_same_way() -> None:
    assert JobEvent.parse_fields("job_1", 3, 1764380000123) == JobEvent("job_1", 3, INSTANT)
    with pytest.raises(PoisonRecord):
        JobEvent.parse_fields(None, 1, None)
    with pytest.raises(PoisonRecord):
        JobEvent.parse_fields("job_1", True, None)


# --- hostile input (contract 9a) ---------------------------------------------------------------


def _nested(depth: int) -> bytes:
    return b'{"jobId": "job_1", "extra": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"[" * 100_000, id="100000-nested-brackets"),
        pytest.param(b"{" * 100_000, id="100000-nested-braces"),
        pytest.param(b'{"a":' * 50_000 + b"1" + b"}" * 50_000, id="50000-nested-objects"),
        pytest.param(_nested(MAX_JSON_DEPTH), id="nested-one-past-the-limit"),
        pytest.param(b'{"jobId": "job_1", "attempt": 1099511627776}', id="attempt-2^40"),
        pytest.param(b'{"jobId": "job_1", "attempt": 2147483648}', id="attempt-2^31"),
        pytest.param(b'{"jobId": "job_1", "attempt": -2147483649}', id="attempt-below-int"),
        pytest.param(b'{"jobId": "job_1", "attempt": 1e999}', id="attempt-1e999"),
        pytest.param(
            b'{"jobId": "job_1", "attempt": ' + b"9" * 5000 + b"}", id="attempt-5000-digits"
        ),
        pytest.param(b'{"jobId": "job_\\ud800"}', id="jobId-lone-high-surrogate"),
        pytest.param(b'{"jobId": "job_\\udfff"}', id="jobId-lone-low-surrogate"),
        pytest.param(record(jobId="j" * 256), id="jobId-256-chars"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": 1e999}', id="scheduledAt-1e999"),
        pytest.param(b'{"jobId": "job_1", "scheduledAt": -1e999}', id="scheduledAt-minus-1e999"),
        pytest.param(
            b'{"jobId": "job_1", "scheduledAt": ' + b"9" * 4000 + b"}", id="scheduledAt-4000-digits"
        ),
        pytest.param(
            b'{"jobId": "job_1", "scheduledAt": ' + b"9" * 5000 + b"}", id="scheduledAt-5000-digits"
        ),
        pytest.param(record(jobId="job_1", scheduledAt=-(10**20)), id="scheduledAt-far-past"),
        pytest.param(record(jobId="job_1", scheduledAt="9" * 100_000), id="scheduledAt-long-text"),
        pytest.param(b"\x00" * 1_000_000, id="1MB-of-NUL"),
        pytest.param(b'"' + b'\\"' * 300_000, id="unterminated-string-of-escapes"),
    ],
)
def test_hostile_value_is_poison_and_nothing_else(value: bytes) -> None:
    with pytest.raises(PoisonRecord):
        JobEvent.parse(value)


def test_limits_themselves_are_accepted() -> None:
    assert JobEvent.parse(record(jobId="j" * 255, attempt=2147483647)).attempt == 2147483647
    assert JobEvent.parse(_nested(MAX_JSON_DEPTH - 1)).job_id == "job_1"
    assert JobEvent.parse(record(jobId="job_\U0001f600")).job_id == "job_\U0001f600"


def _mixed(depth: int) -> bytes:
    """A JobEvent whose `extra` alternates arrays and objects, `depth` levels in all."""
    inner: object = 1
    for level in range(depth - 1):
        inner = [inner] if level % 2 else {"a": inner}
    return json.dumps({"jobId": "job_1", "extra": inner}).encode()


def test_mixed_nesting_counts_every_level() -> None:
    assert JobEvent.parse(_mixed(MAX_JSON_DEPTH)).job_id == "job_1"
    with pytest.raises(PoisonRecord, match="deeper than 32"):
        JobEvent.parse(_mixed(MAX_JSON_DEPTH + 1))


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    value = record(jobId="job_[{", note="[" * 10_000 + '\\"' + "{" * 10_000)

    assert JobEvent.parse(value).job_id == "job_[{"


def test_random_bytes_never_raise_anything_but_poison() -> None:
    rng = random.Random(8)
    alphabet = b'[]{}",:\\0123456789.eE-+ tfnul"jobIdattempt'
    for _ in range(2000):
        value = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 200)))
        with contextlib.suppress(PoisonRecord):
            JobEvent.parse(value)


@pytest.mark.parametrize(
    ("job_id", "attempt", "scheduled_at"),
    [
        pytest.param("job_1", 1099511627776, None, id="attempt-2^40"),
        pytest.param("job_1", 0, None, id="attempt-0"),
        pytest.param("job_\ud800", 1, None, id="jobId-lone-surrogate"),
        pytest.param("j" * 256, 1, None, id="jobId-256-chars"),
        pytest.param("job_1", 1, 10**5000, id="scheduledAt-huge-int"),
        pytest.param("job_1", 1, float("inf"), id="scheduledAt-inf"),
        pytest.param("job_1", 1, "+999999-01-01T00:00:00", id="scheduledAt-year-999999"),
    ],
)
def test_crafted_task_kwargs_are_poison(
    job_id: object, attempt: object, scheduled_at: object
) -> None:
    with pytest.raises(PoisonRecord):
        JobEvent.parse_fields(job_id, attempt, scheduled_at)


# --- round trip --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        JobEvent("job_1", 1, None),
        JobEvent("job_ü", 4, INSTANT),
        JobEvent("job_2", 2, datetime(2025, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=5)))),
    ],
)
def test_to_json_round_trips(event: JobEvent) -> None:
    encoded = event.to_json()

    assert JobEvent.parse(encoded) == event
    encoded.decode("utf-8")  # the value is UTF-8


def test_to_json_uses_the_contract_field_names() -> None:
    body = json.loads(JobEvent("job_1", 2, INSTANT).to_json())

    assert set(body) == {"jobId", "attempt", "scheduledAt"}
    assert body["jobId"] == "job_1"
    assert body["attempt"] == 2
