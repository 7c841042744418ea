"""The sweeper: a run left RUNNING with no live lease is dispatched again, or settled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import make_url, update

from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import job_runs, jobs
from jobexec.core.db.store import JobStore
from jobexec.core.deadletter import DeadLetterWriter
from jobexec.core.kafka import reliable_producer
from jobexec.testing.kafka import KafkaTopics
from scheduling.scheduler import Scheduler
from scheduling.sweeper import Sweeper


@pytest.fixture
def store(pg_url: str) -> Iterator[JobStore]:
    engine = make_engine(make_url(pg_url))
    upgrade(engine)
    yield JobStore(engine)
    engine.dispose()


@pytest.fixture
def scheduler(store: JobStore, kafka: KafkaTopics) -> Scheduler:
    settings = Settings.load(
        {
            "CONFIGS_KAFKA_BOOTSTRAPSERVERS": kafka.bootstrap,
            "CONFIGS_KAFKA_TOPIC_JOBEVENTS": kafka.topic,
            "CONFIGS_KAFKA_TOPIC_DEADLETTER": kafka.dlt,
            "CONFIGS_SWEEPER_ABANDONEDAFTERMS": "60000",
            "CONFIGS_SWEEPER_INTERVALMS": "1",
            "CONFIGS_RETRY_MAXATTEMPTS": "3",
        }
    )
    producer = reliable_producer(settings.kafka_client_properties)
    sweeper = Sweeper.from_settings(
        settings, store, DeadLetterWriter(producer, settings.dead_letter_topic)
    )
    return Scheduler.from_settings(settings, store, producer, sweeper)


def running_since(store: JobStore, job_id: str, ago: timedelta, **row: object) -> datetime:
    """A job RUNNING since `ago`, as the scheduler left it; returns its next_run_at."""
    next_run_at = datetime.now(UTC) - ago
    store.insert_jobs(
        [
            {
                "job_id": job_id,
                "job_type": "ONE_TIME",
                "payload": {"task": "noop"},
                "status": "RUNNING",
                "attempts": 1,
                "next_run_at": next_run_at,
                **row,
            }
        ]
    )
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == job_id).values(updated_at=next_run_at))
    return next_run_at


def lease(store: JobStore, job_id: str, run_at: datetime, expires_in: timedelta) -> None:
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            job_runs.insert().values(
                job_id=job_id,
                run_at=run_at,
                attempt=1,
                worker="w",
                status="RUNNING",
                started_at=now - timedelta(hours=1),
                lease_expires_at=now + expires_in,
            )
        )


def test_run_whose_message_was_lost_is_dispatched_again(
    store: JobStore, scheduler: Scheduler, kafka: KafkaTopics
) -> None:
    running_since(store, "job_lost", timedelta(minutes=5))
    assert scheduler.tick() == 1
    row = store.job_row("job_lost")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("RUNNING", 2)
    [event] = kafka.consume_all(kafka.topic, expected=1)
    assert event.key == b"job_lost"
    assert (event.json()["jobId"], event.json()["attempt"]) == ("job_lost", 2)


def test_run_whose_worker_died_is_dispatched_once_its_lease_is_long_gone(
    store: JobStore, scheduler: Scheduler, kafka: KafkaTopics
) -> None:
    run_at = running_since(store, "job_dead", timedelta(minutes=10))
    lease(store, "job_dead", run_at, expires_in=-timedelta(minutes=5))
    assert scheduler.tick() == 1
    assert store.job_row("job_dead")["attempts"] == 2  # type: ignore[index]


def test_runs_with_a_live_lease_or_recently_dispatched_are_left_alone(
    store: JobStore, scheduler: Scheduler, kafka: KafkaTopics
) -> None:
    run_at = running_since(store, "job_long", timedelta(minutes=30))
    lease(store, "job_long", run_at, expires_in=timedelta(seconds=30))
    running_since(store, "job_fresh", timedelta(seconds=5))
    assert scheduler.tick() == 0
    assert store.job_row("job_long")["attempts"] == 1  # type: ignore[index]
    assert store.job_row("job_fresh")["attempts"] == 1  # type: ignore[index]
    assert kafka.consume_all(kafka.topic, expected=1, timeout=2) == []


def test_abandoned_run_without_tries_left_is_settled_as_exhausted(
    store: JobStore, scheduler: Scheduler, kafka: KafkaTopics
) -> None:
    running_since(store, "job_spent", timedelta(minutes=5), attempts=3)
    running_since(
        store,
        "job_recurring",
        timedelta(minutes=5),
        attempts=3,
        job_type="RECURRING",
        cron_expression="0 0 * * * *",
    )
    counted_before = _abandoned_dead_letters()
    assert scheduler.tick() == 0
    spent = store.job_row("job_spent")
    assert spent is not None
    assert spent["status"] == "FAILED"
    assert "exhausted" in spent["failure_reason"]
    recurring = store.job_row("job_recurring")
    assert recurring is not None
    assert (recurring["status"], recurring["attempts"]) == ("SCHEDULED", 0)
    assert recurring["next_run_at"] > datetime.now(UTC)
    assert recurring["failed_at"] is not None
    letters = kafka.consume_all(kafka.dlt, expected=2)
    assert sorted(letter.key for letter in letters) == [b"job_recurring", b"job_spent"]
    assert all(
        letter.headers["kafka_dlt-exception-fqcn"] == b"jobexec.AttemptsExhausted"
        for letter in letters
    )
    # And both dead letters are counted, as the worker's and the bridge's are
    assert _abandoned_dead_letters() - counted_before == 2


def _abandoned_dead_letters() -> float:
    labels = {"reason": "abandoned"}
    return REGISTRY.get_sample_value("jobexec_dead_lettered_total", labels) or 0.0
