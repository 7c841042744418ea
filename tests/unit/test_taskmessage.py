"""The task message bridge -> worker: the kwargs on the wire, their round trip, and what a worker
does with kwargs no JobEvent can have."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobexec.core.config import Settings
from jobexec.core.events import JobEvent, Origin, PoisonRecord
from jobexec.core.taskmessage import TASK_NAME, TaskMessage, decode_origin, send

BOUNDED = settings(max_examples=200, deadline=None)

job_ids = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=255).filter(
    str.strip
)
offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
    lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1)))
)
schedules = st.none() | st.datetimes(timezones=offsets)
origins = st.none() | st.builds(
    Origin, st.text(max_size=40), st.integers(-1, 2**31 - 1), st.integers(-1, 2**63 - 1)
)
messages = st.builds(
    TaskMessage, st.builds(JobEvent, job_ids, st.integers(1, 2**31 - 1), schedules), origins
)


def test_the_kwargs_on_the_wire_are_the_four_a_previous_worker_takes() -> None:
    event = JobEvent("job_1", 3, datetime(2026, 12, 3, 14, 0, tzinfo=UTC))
    message = TaskMessage(event, Origin("job-events", 2, 41))

    assert TASK_NAME == "jobexec.execute_job"
    assert message.kwargs() == {
        "job_id": "job_1",
        "attempt": 3,
        "scheduled_at": "2026-12-03T14:00:00+00:00",
        "origin": {"topic": "job-events", "partition": 2, "offset": 41},
    }
    assert message.kwargsrepr() == "{'job_id': 'job_1', 'attempt': 3}"


def test_a_try_without_a_schedule_or_an_origin_sends_nulls() -> None:
    kwargs = TaskMessage(JobEvent("job_1", 1, None), None).kwargs()

    assert kwargs == {"job_id": "job_1", "attempt": 1, "scheduled_at": None, "origin": None}


@BOUNDED
@given(messages)
def test_what_is_encoded_decodes_to_the_same_message(message: TaskMessage) -> None:
    decoded = TaskMessage.decode(**message.kwargs())

    assert decoded == message
    # A worker re-publishing the next try sends what the bridge sent, attempt aside.
    assert decoded.kwargs() == message.kwargs()


@BOUNDED
@given(messages, st.integers(1, 2**31 - 1))
def test_the_next_try_keeps_job_schedule_and_origin(message: TaskMessage, attempt: int) -> None:
    kwargs = message.next_try(attempt).kwargs()

    assert kwargs == {**message.kwargs(), "attempt": attempt}


def test_kwargs_of_an_older_publisher_take_the_defaults() -> None:
    message = TaskMessage.decode(job_id="job_1")

    assert message == TaskMessage(JobEvent("job_1", 1, None), None)


def test_a_schedule_in_any_form_a_jobevent_takes_is_read_as_one() -> None:
    expected = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)

    for raw in ("2026-12-03T14:00:00Z", "2026-12-03T14:00:00", 1796306400, 1796306400000):
        assert TaskMessage.decode("job_1", 1, raw).event.scheduled_at == expected


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"job_id": None}, "jobId is missing or not a non-empty string"),
        ({"job_id": "  "}, "jobId is missing or not a non-empty string"),
        ({"job_id": 42}, "jobId is missing or not a non-empty string"),
        ({"job_id": "j" * 256}, "jobId has 256 characters, more than 255"),
        ({"job_id": "job_\ud800"}, "jobId is not valid Unicode text (a lone surrogate)"),
        ({"job_id": "job_1", "attempt": 0}, "attempt is not a whole number from 1 to 2147483647"),
        ({"job_id": "job_1", "attempt": 2**40}, "attempt is not a whole number"),
        ({"job_id": "job_1", "attempt": True}, "attempt is not a whole number"),
        ({"job_id": "job_1", "attempt": "2"}, "attempt is not a whole number"),
        ({"job_id": "job_1", "scheduled_at": "tomorrow"}, "scheduledAt 'tomorrow' is not ISO"),
        ({"job_id": "job_1", "scheduled_at": False}, "scheduledAt is a boolean"),
        ({"job_id": "job_1", "scheduled_at": [1]}, "scheduledAt has type list"),
        ({"job_id": "job_1", "scheduled_at": 10**20}, "scheduledAt is out of range"),
    ],
)
def test_kwargs_no_jobevent_can_have_are_a_poison_record_saying_why(
    kwargs: dict[str, Any], reason: str
) -> None:
    with pytest.raises(PoisonRecord) as raised:
        TaskMessage.decode(**kwargs)

    assert str(raised.value).startswith(reason)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "job-events:0:1",
        ["job-events", 0, 1],
        {"topic": "job-events", "partition": 0},
        {"topic": "job-events", "partition": "zero", "offset": 1},
        {"topic": "job-events", "partition": None, "offset": 1},
    ],
)
def test_an_origin_a_worker_cannot_read_is_none_not_a_rejection(raw: object) -> None:
    message = TaskMessage.decode("job_1", 1, None, raw)

    assert message.origin is None
    assert decode_origin(raw) is None


def test_an_origin_is_read_as_the_bridge_wrote_it() -> None:
    raw = {"topic": "job-events", "partition": 2, "offset": 41}

    assert decode_origin(raw) == Origin("job-events", 2, 41)


class _RecordingApp:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append((name, options))


def test_send_publishes_the_task_with_its_kwargs_and_a_short_repr() -> None:
    app = _RecordingApp()
    message = TaskMessage(JobEvent("job_1", 2, None), Origin("job-events", -1, -1))

    send(app, message, queue="q", producer="p", headers={"traceparent": "00-x"}, retry=False)  # type: ignore[arg-type]

    assert app.sent == [
        (
            TASK_NAME,
            {
                "kwargs": message.kwargs(),
                "queue": "q",
                "producer": "p",
                "argsrepr": "()",
                "kwargsrepr": "{'job_id': 'job_1', 'attempt': 2}",
                "headers": {"traceparent": "00-x"},
                "retry": False,
            },
        )
    ]


def test_the_worker_drops_a_malformed_task_with_one_error_and_no_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from workers.celeryconf import create_app
    from workers.tasks import register

    config = Settings.load({})
    app = create_app(config)
    register(app, config)

    with caplog.at_level(logging.ERROR, logger="jobexec.worker"):
        result = app.tasks[TASK_NAME].apply(kwargs={"job_id": "job_1", "attempt": 2**40})

    assert result.successful() and result.result is None
    assert [r.getMessage() for r in caplog.records if r.name == "jobexec.worker"] == [
        "malformed task for job 'job_1' dropped: attempt is not a whole number from 1 to 2147483647"
    ]
