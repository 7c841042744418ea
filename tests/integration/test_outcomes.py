"""Every row of the contract's outcomes table, against PostgreSQL and SQLite alike.

The lifecycle runs in-process here (no Celery); the dead-letter topic is real Kafka (Tansu).
The e2e tests drive the same outcomes through the real processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import make_url, update

from executors import Executor, JobRun, PermanentError, Registry, Stopped, TransientError
from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import job_runs, jobs
from jobexec.core.db.store import JobStore
from jobexec.core.deadletter import DeadLetterWriter
from jobexec.core.events import JobEvent
from jobexec.core.kafka import reliable_producer
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.waiting import wait_until
from workers.lease import LeaseKeeper
from workers.lifecycle import HandBack, RetryLater, WorkerContext, handle
from workers.retry import RetryPolicy

SETTINGS = Settings.load({})


class ProbeExecutor(Executor):
    """Does what the payload's `result` says and records every execution."""

    task: ClassVar[str] = "probe"

    def __init__(self, settings: Settings) -> None:
        self.calls: list[JobRun] = []
        self.release = threading.Event()
        self.release.set()

    def execute(self, run: JobRun) -> None:
        self.calls.append(run)
        self.release.wait(10)
        result = run.payload.get("result", "ok")
        if result == "transient":
            raise TransientError("upstream said 503")
        if result == "permanent":
            raise PermanentError("upstream said 400")
        if result == "crash":
            raise RuntimeError("executor bug")


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    url = (
        request.getfixturevalue("pg_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'jobs.db'}"
    )
    engine = make_engine(make_url(url))
    upgrade(engine)
    yield JobStore(engine)
    engine.dispose()


@pytest.fixture
def probe() -> ProbeExecutor:
    return ProbeExecutor(SETTINGS)


@pytest.fixture
def ctx(store: JobStore, probe: ProbeExecutor, kafka: KafkaTopics) -> WorkerContext:
    producer = reliable_producer({"bootstrap.servers": kafka.bootstrap})
    return WorkerContext(
        store=store,
        registry=Registry([probe]),
        retry=RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.5),
        lease=timedelta(seconds=30),
        leases=LeaseKeeper(store, timedelta(seconds=30), 10),
        dead_letters=DeadLetterWriter(producer, kafka.dlt),
        events_topic=kafka.topic,
    )


def dispatched(store: JobStore, job_id: str, **row: Any) -> dict[str, Any]:
    """A job as the scheduler leaves it when it publishes the JobEvent: RUNNING, attempts 1."""
    values = {
        "job_id": job_id,
        "job_type": "ONE_TIME",
        "payload": {"task": "probe"},
        "status": "RUNNING",
        "attempts": 1,
        "next_run_at": datetime.now(UTC) - timedelta(seconds=1),
        **row,
    }
    store.insert_jobs([values])
    job = store.job_row(job_id)
    assert job is not None
    return job


def run(ctx: WorkerContext, job_id: str, attempt: int = 1) -> RetryLater | None:
    return handle(ctx, JobEvent(job_id, attempt, None), "test-worker", None)


def test_missing_job_is_rejected_and_nothing_is_written(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    assert run(ctx, "job_missing") is None
    assert store.job_row("job_missing") is None
    assert store.runs("job_missing") == []
    assert probe.calls == []


@pytest.mark.parametrize("status", ["SCHEDULED", "PAUSED", "COMPLETED", "FAILED", "CANCELLED"])
def test_event_for_a_job_not_running_is_dropped_and_the_row_unchanged(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor, status: str
) -> None:
    before = dispatched(store, "job_a", status=status)
    assert run(ctx, "job_a") is None
    assert store.job_row("job_a") == before
    assert probe.calls == []


def test_stale_attempt_is_dropped_and_the_row_unchanged(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    before = dispatched(store, "job_a", attempts=2)
    assert run(ctx, "job_a", attempt=1) is None
    assert run(ctx, "job_a", attempt=3) is None
    assert store.job_row("job_a") == before
    assert probe.calls == []


def test_duplicate_delivered_while_the_run_executes_runs_nothing(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    dispatched(store, "job_a")
    probe.release.clear()  # hold the first execution inside the executor
    first = threading.Thread(target=run, args=(ctx, "job_a"))
    first.start()
    try:
        for _ in range(100):
            if probe.calls:
                break
            threading.Event().wait(0.05)
        # The duplicate, while the lease is alive: not run, but looked at again after the lease.
        deferred = run(ctx, "job_a")
        assert deferred is not None
        assert deferred.attempt == 1
        assert 25 <= deferred.delay <= 32  # the 30 s lease, plus a second
    finally:
        probe.release.set()
        first.join(10)
    assert run(ctx, "job_a") is None  # the deferred look: the run finished, so it is dropped
    assert len(probe.calls) == 1
    assert store.job_row("job_a")["status"] == "COMPLETED"  # type: ignore[index]


def test_duplicate_delivered_after_the_run_finished_runs_nothing(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    dispatched(store, "job_a")
    run(ctx, "job_a")
    after = store.job_row("job_a")
    run(ctx, "job_a")
    assert len(probe.calls) == 1
    assert store.job_row("job_a") == after
    assert [r["status"] for r in store.runs("job_a")] == ["SUCCEEDED"]


def test_redelivery_after_the_lease_expired_takes_the_run_over(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    # Given a try claimed by a worker that died: its run row is unfinished and its lease past.
    job = dispatched(store, "job_a")
    with store.engine.begin() as conn:
        conn.execute(
            job_runs.insert().values(
                job_id="job_a",
                run_at=job["next_run_at"],
                attempt=1,
                worker="dead-worker",
                status="RUNNING",
                started_at=datetime.now(UTC) - timedelta(minutes=5),
                lease_expires_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
    run(ctx, "job_a")
    assert len(probe.calls) == 1
    assert store.job_row("job_a")["status"] == "COMPLETED"  # type: ignore[index]
    runs = store.runs("job_a")
    assert [(r["worker"], r["status"]) for r in runs] == [("test-worker", "SUCCEEDED")]


def test_no_executor_for_the_task_fails_the_job_naming_it(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    dispatched(store, "job_a", payload={"task": "teleport"})
    assert run(ctx, "job_a") is None
    row = store.job_row("job_a")
    assert row is not None
    assert row["status"] == "FAILED"
    assert "teleport" in row["failure_reason"]
    assert row["failed_at"] is not None


def test_permanent_error_fails_the_job_with_the_reason_and_no_retry(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    dispatched(store, "job_a", payload={"task": "probe", "result": "permanent"})
    assert run(ctx, "job_a") is None
    row = store.job_row("job_a")
    assert row is not None
    assert (row["status"], row["failure_reason"]) == ("FAILED", "upstream said 400")
    assert len(probe.calls) == 1


@pytest.mark.parametrize("result", ["transient", "crash"])
def test_transient_error_counts_the_try_and_asks_for_a_retry(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor, result: str
) -> None:
    dispatched(store, "job_a", payload={"task": "probe", "result": result})
    retry = run(ctx, "job_a")
    assert retry is not None
    assert retry.attempt == 2
    assert 0.05 <= retry.delay <= 0.1  # initial backoff 0.1 s with equal jitter
    row = store.job_row("job_a")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("RUNNING", 2)
    # The retried try runs; a late duplicate of the first one is now stale.
    assert run(ctx, "job_a", attempt=2) is not None
    assert run(ctx, "job_a", attempt=1) is None
    assert len(probe.calls) == 2
    assert len({c.run_id for c in probe.calls}) == 1  # one idempotency key for every try


def test_one_time_job_exhausted_fails_and_is_dead_lettered(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor, kafka: KafkaTopics
) -> None:
    dispatched(store, "job_a", payload={"task": "probe", "result": "transient"})
    attempt = 1
    while (retry := run(ctx, "job_a", attempt)) is not None:
        attempt = retry.attempt
    assert len(probe.calls) == 3
    row = store.job_row("job_a")
    assert row is not None
    assert row["status"] == "FAILED"
    assert "exhausted" in row["failure_reason"]
    [letter] = kafka.consume_all(kafka.dlt, expected=1)
    assert letter.key == b"job_a"
    assert letter.json()["jobId"] == "job_a"
    assert letter.headers["kafka_dlt-original-topic"] == kafka.topic.encode()
    assert b"exhausted" in letter.headers["kafka_dlt-exception-message"]


def test_recurring_job_exhausted_is_rescheduled_with_the_failure_and_dead_lettered(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor, kafka: KafkaTopics
) -> None:
    dispatched(
        store,
        "job_r",
        job_type="RECURRING",
        cron_expression="0 0 * * * *",
        payload={"task": "probe", "result": "transient"},
    )
    attempt = 1
    while (retry := run(ctx, "job_r", attempt)) is not None:
        attempt = retry.attempt
    row = store.job_row("job_r")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("SCHEDULED", 0)
    assert row["next_run_at"] > datetime.now(UTC)
    assert row["next_run_at"].minute == 0 and row["next_run_at"].second == 0
    assert "exhausted" in row["failure_reason"]
    assert row["failed_at"] is not None
    assert len(kafka.consume_all(kafka.dlt, expected=1)) == 1


def test_one_time_success_completes_the_job(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    dispatched(store, "job_a")
    assert run(ctx, "job_a") is None
    row = store.job_row("job_a")
    assert row is not None
    assert row["status"] == "COMPLETED"
    [try_] = store.runs("job_a")
    assert (try_["status"], try_["attempt"]) == ("SUCCEEDED", 1)
    assert try_["finished_at"] >= try_["started_at"]


@pytest.mark.parametrize(
    ("cron", "field", "period"),
    [("*/10 * * * * *", "second", 10), ("*/5 * * * *", "minute", 5)],
)
def test_recurring_success_schedules_the_next_fire_time_after_now(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor, cron: str, field: str, period: int
) -> None:
    # Given a run that was due long ago: missed fires must not be replayed.
    dispatched(
        store,
        "job_r",
        job_type="RECURRING",
        cron_expression=cron,
        next_run_at=datetime.now(UTC) - timedelta(days=2),
    )
    before = datetime.now(UTC)
    run(ctx, "job_r")
    row = store.job_row("job_r")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("SCHEDULED", 0)
    assert before < row["next_run_at"] <= before + timedelta(minutes=period)
    assert getattr(row["next_run_at"], field) % period == 0


def test_recurring_job_with_an_invalid_cron_fails_without_running(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    dispatched(store, "job_r", job_type="RECURRING", cron_expression="every tuesday")
    assert run(ctx, "job_r") is None
    row = store.job_row("job_r")
    assert row is not None
    assert row["status"] == "FAILED"
    assert "every tuesday" in row["failure_reason"]
    assert probe.calls == []


def test_outcome_is_not_written_over_a_job_changed_meanwhile(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    # Given an operator cancels the job while its try runs.
    dispatched(store, "job_a")
    probe.release.clear()
    worker = threading.Thread(target=run, args=(ctx, "job_a"))
    worker.start()
    for _ in range(100):
        if probe.calls:
            break
        threading.Event().wait(0.05)
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == "job_a").values(status="CANCELLED"))
    probe.release.set()
    worker.join(10)
    assert store.job_row("job_a")["status"] == "CANCELLED"  # type: ignore[index]
    assert [r["status"] for r in store.runs("job_a")] == ["SUCCEEDED"]


def test_a_long_try_keeps_its_lease_alive_while_it_runs(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    # Given a lease of 2 s renewed every 0.2 s, and an executor that runs for longer.
    ctx.lease = timedelta(seconds=2)
    ctx.leases = LeaseKeeper(store, ctx.lease, 0.2)
    dispatched(store, "job_long")
    probe.release.clear()
    first = threading.Thread(target=run, args=(ctx, "job_long"))
    first.start()
    try:
        threading.Event().wait(3)  # past the first lease
        # Then a duplicate delivered now finds a live lease: deferred, not taken over.
        deferred = run(ctx, "job_long")
        assert deferred is not None
        assert deferred.attempt == 1
    finally:
        probe.release.set()
        first.join(10)
    assert len(probe.calls) == 1


# --- run control: time limits and cancel (contract section 9) ------------------------------


def _wait_for(check: Any, timeout: float = 10.0) -> None:
    wait_until(check, timeout, interval=0.05, message="condition not met")


def test_a_try_past_its_limit_is_recorded_and_published_by_the_watchdog_and_its_late_end_is_void(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    # Given a job limited to 0.3 s, and an executor that ignores stop and returns when released
    ctx.stop_grace = 0.3
    dispatched(store, "job_slow", payload={"task": "probe", "max_run_seconds": 0.3})
    probe.release.clear()
    published: list[RetryLater] = []
    results: list[RetryLater | None] = []
    event = JobEvent("job_slow", 1, None)
    first = threading.Thread(
        target=lambda: results.append(handle(ctx, event, "w", None, published.append))
    )
    first.start()
    try:
        # When the limit passes, then the watchdog records the transient outcome and publishes
        # the next try itself, while the executor still hangs
        _wait_for(lambda: published)
        assert [p.attempt for p in published] == [2]
        job = store.job_row("job_slow")
        assert job is not None and (job["status"], job["attempts"]) == ("RUNNING", 2)
        [try_1] = store.runs("job_slow")
        assert (try_1["status"], try_1["error"]) == (
            "RETRYING",
            "run exceeded its time limit of 0.3 s",
        )
        assert first.is_alive()
    finally:
        probe.release.set()
        first.join(10)
    # And the executor's late success changes nothing: no second outcome, no second retry
    assert results == [None]
    assert len(published) == 1
    assert store.runs("job_slow")[0]["status"] == "RETRYING"
    job = store.job_row("job_slow")
    assert job is not None and (job["status"], job["attempts"]) == ("RUNNING", 2)


def test_a_bad_limit_in_the_payload_fails_the_job_without_running_it(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    dispatched(store, "job_bad", payload={"task": "probe", "max_run_seconds": "soon"})

    assert run(ctx, "job_bad") is None

    job = store.job_row("job_bad")
    assert job is not None and job["status"] == "FAILED"
    assert "payload.max_run_seconds" in job["failure_reason"]
    assert probe.calls == []


def test_a_cancelled_job_has_its_running_try_stopped_and_recorded_cancelled(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    # Given a try that runs until released
    dispatched(store, "job_c")
    probe.release.clear()
    results: list[RetryLater | None] = []
    first = threading.Thread(target=lambda: results.append(run(ctx, "job_c")))
    first.start()
    try:
        _wait_for(lambda: probe.calls)
        # When its job is cancelled
        with store.engine.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.job_id == "job_c").values(status="CANCELLED"))
        # Then within about a second the try is told to stop and recorded CANCELLED
        _wait_for(lambda: probe.calls[0].stop_requested(), timeout=3)
        _wait_for(lambda: store.runs("job_c")[0]["status"] == "CANCELLED", timeout=3)
    finally:
        probe.release.set()
        first.join(10)
    assert results == [None]  # no further try
    job = store.job_row("job_c")
    assert job is not None and job["status"] == "CANCELLED"


class WaitingExecutor(Executor):
    """`waiting`: waits up to 10 s, and stops when told (as the built-in executors do)."""

    task: ClassVar[str] = "waiting"

    def execute(self, run: JobRun) -> None:
        if run.wait(10):
            raise Stopped("told to stop")


def test_a_try_stopped_by_the_worker_shutdown_is_handed_back_and_taken_over_at_once(
    ctx: WorkerContext, store: JobStore, probe: ProbeExecutor
) -> None:
    # Given a try of an executor that stops when told
    ctx.registry = Registry([probe, WaitingExecutor(SETTINGS)])
    dispatched(store, "job_w", payload={"task": "waiting"})
    results: list[RetryLater | HandBack | None] = []
    first = threading.Thread(target=lambda: results.append(run(ctx, "job_w")))
    first.start()
    _wait_for(lambda: store.runs("job_w"))

    # When the worker stops and tells its tries to
    ctx.leases.stop_all("shutdown")
    first.join(5)

    # Then the try hands itself back: no outcome, its lease released
    assert results == [HandBack()]
    [try_1] = store.runs("job_w")
    assert try_1["finished_at"] is None
    job = store.job_row("job_w")
    assert job is not None and (job["status"], job["attempts"]) == ("RUNNING", 1)
    # And the requeued message's delivery takes the same try over at once, not after the lease
    ctx.leases = LeaseKeeper(store, ctx.lease, 10)
    again: list[RetryLater | HandBack | None] = []
    second = threading.Thread(target=lambda: again.append(run(ctx, "job_w")))
    second.start()
    _wait_for(lambda: store.runs("job_w")[0]["started_at"] > try_1["started_at"])
    ctx.leases.stop_all("shutdown")
    second.join(5)
    assert again == [HandBack()]
