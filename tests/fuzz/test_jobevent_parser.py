"""Property tests of the JobEvent parser (contract sections 4 and 9a): whatever the bytes or
the task kwargs, the result is a JobEvent within the contract's ranges or a PoisonRecord.

The section 9a cases (deep nesting, attempt beyond a Java int, jobId longer than 255 or with a
lone surrogate) have a property each, so a regression there names itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobexec.core.events import JobEvent, PoisonRecord

BOUNDED = settings(max_examples=200, deadline=None)
JAVA_INT_MAX = 2**31 - 1

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**31), max_value=JAVA_INT_MAX)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
job_ids = st.text(min_size=1, max_size=255)
attempts = st.integers(min_value=-5, max_value=JAVA_INT_MAX) | json_values
scheduled = (
    st.none()
    | st.datetimes(timezones=st.timezones() | st.none()).map(lambda d: d.isoformat())
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**20), max_value=10**20)
    | json_values
)


def assert_within_contract(event: JobEvent) -> None:
    assert isinstance(event.job_id, str) and event.job_id.strip()
    assert len(event.job_id) <= 255
    event.job_id.encode("utf-8")  # valid Unicode: no lone surrogate
    assert type(event.attempt) is int and 1 <= event.attempt <= JAVA_INT_MAX
    assert event.scheduled_at is None or event.scheduled_at.tzinfo is not None


def parse_or_poison(value: bytes | None) -> JobEvent | None:
    try:
        event = JobEvent.parse(value)
    except PoisonRecord:
        return None
    assert_within_contract(event)
    return event


@BOUNDED
@given(st.binary(max_size=512))
def test_arbitrary_bytes_parse_or_raise_poison_record_only(value: bytes) -> None:
    parse_or_poison(value)


@BOUNDED
@given(
    job_id=job_ids | json_values,
    attempt=attempts,
    scheduled_at=scheduled,
    extra=st.dictionaries(st.text(max_size=8), json_values, max_size=3),
)
def test_generated_objects_parse_to_their_fields_or_raise_poison_record_only(
    job_id: Any, attempt: Any, scheduled_at: Any, extra: dict[str, Any]
) -> None:
    body = {**extra, "jobId": job_id, "attempt": attempt, "scheduledAt": scheduled_at}
    event = parse_or_poison(json.dumps(body).encode())
    if event is not None:
        assert (event.job_id, event.attempt) == (job_id, attempt)


@BOUNDED
@given(job_id=job_ids | json_values, attempt=attempts, scheduled_at=scheduled)
def test_task_kwargs_validate_to_their_fields_or_raise_poison_record_only(
    job_id: Any, attempt: Any, scheduled_at: Any
) -> None:
    try:
        event = JobEvent.parse_fields(job_id, attempt, scheduled_at)
    except PoisonRecord:
        return
    assert_within_contract(event)
    assert (event.job_id, event.attempt) == (job_id, attempt)


@BOUNDED
@given(attempt=st.integers(min_value=JAVA_INT_MAX + 1))
def test_an_attempt_beyond_a_java_int_is_poison(attempt: int) -> None:
    with pytest.raises(PoisonRecord):
        JobEvent.parse(json.dumps({"jobId": "job_1", "attempt": attempt}).encode())


@BOUNDED
@given(job_id=st.text(min_size=256, max_size=2000).filter(str.strip))
def test_a_job_id_longer_than_255_characters_is_poison(job_id: str) -> None:
    with pytest.raises(PoisonRecord):
        JobEvent.parse(json.dumps({"jobId": job_id}).encode())


@BOUNDED
@given(
    prefix=st.text(max_size=10),
    surrogate=st.integers(min_value=0xD800, max_value=0xDFFF),
)
def test_a_job_id_with_a_lone_surrogate_is_poison_in_records_and_task_kwargs(
    prefix: str, surrogate: int
) -> None:
    value = b'{"jobId": "job' + json.dumps(prefix)[1:-1].encode() + b"\\u%04x" % surrogate + b'"}'
    with pytest.raises(PoisonRecord):
        JobEvent.parse(value)
    with pytest.raises(PoisonRecord):
        JobEvent.parse_fields(f"job{prefix}{chr(surrogate)}", 1, None)


@BOUNDED
@given(depth=st.integers(min_value=2_000, max_value=50_000), opener=st.sampled_from("[{"))
def test_json_nested_deeper_than_a_jobevent_can_is_poison(depth: int, opener: str) -> None:
    nested = '{"a":' * depth + "1" + "}" * depth if opener == "{" else "[" * depth + "]" * depth
    with pytest.raises(PoisonRecord):
        JobEvent.parse(f'{{"jobId": "job_1", "x": {nested}}}'.encode())
