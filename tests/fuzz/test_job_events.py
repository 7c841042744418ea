"""Property tests: whatever bytes a record holds and whatever kwargs a task message carries,
JobEvent.parse and parse_fields return a JobEvent within the contract's limits or raise
PoisonRecord, never anything else (which would stop the bridge or retry a task without end)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from jobexec.core.events import MAX_ATTEMPT, MAX_JOB_ID_CHARS, JobEvent, PoisonRecord

BOUNDED = settings(max_examples=200, deadline=None)

# Text with lone surrogates, NULs and JSON's own punctuation drawn often.
tricky_text = st.text(st.sampled_from(list('ab_[]{}",:\\\x00\ud800\udfffé')), max_size=300)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | tricky_text
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(tricky_text, children),
    max_leaves=10,
)
fields = st.fixed_dictionaries(
    {}, optional={"jobId": values, "attempt": values, "scheduledAt": values, "x": values}
)


def _check(outcome: JobEvent) -> None:
    assert 1 <= outcome.attempt <= MAX_ATTEMPT
    assert 0 < len(outcome.job_id) <= MAX_JOB_ID_CHARS
    outcome.job_id.encode("utf-8")
    outcome.to_json()  # what the bridge publishes can be written


def _parse(value: bytes) -> None:
    try:
        event = JobEvent.parse(value)
    except PoisonRecord:
        return
    _check(event)


@BOUNDED
@given(st.binary(max_size=2000))
def test_any_bytes_are_a_job_event_or_poison(value: bytes) -> None:
    _parse(value)


@BOUNDED
@given(fields)
def test_any_json_object_is_a_job_event_or_poison(body: dict[str, Any]) -> None:
    _parse(json.dumps(body).encode("utf-8", "surrogatepass"))


@BOUNDED
@given(st.integers(min_value=0, max_value=3000), st.sampled_from(["[", "{", '{"a":', "[{"]))
def test_nesting_of_any_depth_is_a_job_event_or_poison(depth: int, opener: str) -> None:
    _parse((opener * depth).encode())


@BOUNDED
@given(values, values, values)
def test_any_task_kwargs_are_a_job_event_or_poison(job_id: Any, attempt: Any, at: Any) -> None:
    try:
        event = JobEvent.parse_fields(job_id, attempt, at)
    except PoisonRecord:
        return
    _check(event)
