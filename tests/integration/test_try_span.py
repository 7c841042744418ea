"""The try's span records how the watchdog ended it: time limit exceeded, or cancelled.

The lifecycle runs in-process on a real job database (PostgreSQL and SQLite), inside the try's
span as the Celery task runs it; spans go to the SDK's in-memory exporter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from sqlalchemy import update

from executors import Executor, JobRun, Registry, TransientError
from jobexec.core import tracing
from jobexec.core.config import Settings
from jobexec.core.db.schema import jobs
from jobexec.core.db.store import JobStore
from jobexec.core.events import JobEvent
from jobexec.core.tracing_sdk import Tracing
from jobexec.testing.waiting import wait_until
from workers.lease import LeaseKeeper
from workers.lifecycle import HandBack, RetryLater, WorkerContext, handle
from workers.retry import RetryPolicy


class HangingExecutor(Executor):
    """`hanging`: ignores stop and returns only when released, or fails when told to."""

    task: ClassVar[str] = "hanging"

    def __init__(self, settings: Settings) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def execute(self, run: JobRun) -> None:
        self.started.set()
        self.release.wait(10)
        if run.payload.get("result") == "transient":
            raise TransientError("upstream said 503")


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(Tracing(provider))
    yield exporter
    tracing.install(None)


@pytest.fixture
def hanging() -> Iterator[HangingExecutor]:
    executor = HangingExecutor(Settings.load({}))
    yield executor
    executor.release.set()


@pytest.fixture
def ctx(store: JobStore, hanging: HangingExecutor) -> WorkerContext:
    return WorkerContext(
        store=store,
        registry=Registry([hanging]),
        retry=RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.5),
        lease=timedelta(seconds=30),
        leases=LeaseKeeper(store, timedelta(seconds=30), 10, cancel_check=0.2),
        dead_letters=None,
        events_topic="job-events",
        stop_grace=0.3,
    )


def dispatched(store: JobStore, job_id: str, payload: dict[str, Any]) -> None:
    """A job as the scheduler leaves it when it publishes the JobEvent: RUNNING, attempts 1."""
    store.insert_jobs(
        [
            {
                "job_id": job_id,
                "job_type": "ONE_TIME",
                "payload": payload,
                "status": "RUNNING",
                "attempts": 1,
                "next_run_at": datetime.now(UTC) - timedelta(seconds=1),
            }
        ]
    )


def traced_try(
    ctx: WorkerContext, job_id: str, published: list[RetryLater]
) -> tuple[threading.Thread, list[RetryLater | HandBack | None]]:
    """One try on a thread of its own, inside its span as `jobexec.execute_job` runs it."""
    results: list[RetryLater | HandBack | None] = []

    def task() -> None:
        trace = tracing.start_try(job_id, 1, SimpleNamespace())
        try:
            results.append(handle(ctx, JobEvent(job_id, 1, None), "w", None, published.append))
        finally:
            tracing.end_try(trace)

    thread = threading.Thread(target=task)
    thread.start()
    return thread, results


def one_span(spans: InMemorySpanExporter) -> ReadableSpan | None:
    finished = spans.get_finished_spans()
    return finished[0] if len(finished) == 1 else None


def test_given_a_try_past_its_limit_when_the_watchdog_ends_it_then_its_span_says_so(
    ctx: WorkerContext, store: JobStore, hanging: HangingExecutor, spans: InMemorySpanExporter
) -> None:
    # Given a job limited to 0.3 s whose executor hangs past it and past the stop grace
    dispatched(store, "job_slow", {"task": "hanging", "max_run_seconds": 0.3})
    published: list[RetryLater] = []
    thread, results = traced_try(ctx, "job_slow", published)

    # When the watchdog ends the try and abandons its executor, then the try's span is
    # exported at once, while the executor still hangs
    span = wait_until(lambda: one_span(spans), 10, interval=0.05, message="no span exported")
    assert thread.is_alive()
    assert [p.attempt for p in published] == [2]

    # And it records the outcome: status ERROR with the reason, the stop as an event
    assert span.name == "jobexec.try"
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "run exceeded its time limit of 0.3 s"
    assert span.attributes is not None
    assert (span.attributes["jobexec.outcome"], span.attributes["jobexec.task"]) == (
        "retry",
        "hanging",
    )
    (event,) = span.events
    assert event.name == "jobexec.stopped"
    assert dict(event.attributes or {}) == {
        "jobexec.stop_reason": "limit",
        "jobexec.reason": "run exceeded its time limit of 0.3 s",
    }

    # And the executor's late end changes nothing of the span, nor adds one
    hanging.release.set()
    thread.join(10)
    assert results == [None]
    assert spans.get_finished_spans() == (span,)
    assert span.attributes["jobexec.outcome"] == "retry"


def test_given_a_running_try_when_its_job_is_cancelled_then_its_span_records_the_cancel(
    ctx: WorkerContext, store: JobStore, hanging: HangingExecutor, spans: InMemorySpanExporter
) -> None:
    # Given a try whose executor runs until released
    ctx.stop_grace = 10.0
    dispatched(store, "job_c", {"task": "hanging", "result": "transient"})
    thread, results = traced_try(ctx, "job_c", [])
    assert hanging.started.wait(10)

    # When its job is cancelled, the watchdog tells the try to stop and records CANCELLED;
    # then the executor returns (failing, as a stopped call does)
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == "job_c").values(status="CANCELLED"))
    wait_until(lambda: store.runs("job_c")[0]["status"] == "CANCELLED", 5, interval=0.05)
    hanging.release.set()
    thread.join(10)
    assert results == [None]

    # Then the try's span records the cancel, not the executor's late error
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "job cancelled"
    assert span.attributes is not None
    assert span.attributes["jobexec.outcome"] == "cancelled"
    assert [(e.name, dict(e.attributes or {})) for e in span.events] == [
        ("jobexec.stopped", {"jobexec.stop_reason": "cancel", "jobexec.reason": "job cancelled"})
    ]


def test_given_tracing_off_when_the_watchdog_ends_a_try_then_no_span_and_the_outcome_stands(
    ctx: WorkerContext, store: JobStore, hanging: HangingExecutor
) -> None:
    # Given tracing off and a try that hangs past its limit of 0.3 s
    assert not tracing.enabled()
    dispatched(store, "job_off", {"task": "hanging", "max_run_seconds": 0.3})
    published: list[RetryLater] = []
    thread, results = traced_try(ctx, "job_off", published)

    # When the watchdog ends it, then its outcome is recorded as with tracing on
    wait_until(lambda: published, 10, interval=0.05, message="next try not published")
    assert store.runs("job_off")[0]["error"] == "run exceeded its time limit of 0.3 s"
    hanging.release.set()
    thread.join(10)
    assert results == [None]
