"""jobexec.testing's JobEvents and dead-letter header names are the ones production writes."""

from __future__ import annotations

from datetime import UTC, datetime

from jobexec.core.events import JobEvent
from jobexec.testing.events import DLT_HEADERS, ORIGINAL_SIZE_HEADER, event_record, job_event


def test_the_dead_letter_headers_are_spring_kafkas_names() -> None:
    # Spelled out: a rename in production must fail here, not pass through the shared names.
    assert DLT_HEADERS == (
        "kafka_dlt-exception-fqcn",
        "kafka_dlt-exception-message",
        "kafka_dlt-original-topic",
        "kafka_dlt-original-partition",
        "kafka_dlt-original-offset",
    )
    assert ORIGINAL_SIZE_HEADER == "jobexec-dlt-original-size"


def test_a_built_job_event_parses_back_to_the_same_event() -> None:
    value = job_event("job_1", attempt=3, scheduled_at=1764380000.5)

    assert JobEvent.parse(value) == JobEvent("job_1", 3, datetime.fromtimestamp(1764380000.5, UTC))


def test_a_job_event_record_is_keyed_by_its_job_id_and_scheduled_now() -> None:
    before = datetime.now(UTC)

    key, value = event_record("job_2")

    event = JobEvent.parse(value)
    assert key == b"job_2"
    assert (event.job_id, event.attempt) == ("job_2", 1)
    assert event.scheduled_at is not None and before <= event.scheduled_at <= datetime.now(UTC)
