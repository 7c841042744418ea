"""The scheduler against a real job database and Tansu: due SCHEDULED jobs become RUNNING with
one JobEvent each, nothing else is touched, and two schedulers never dispatch a run twice
(contract 5). Every behaviour runs on PostgreSQL and on SQLite.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, select

from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import jobs
from jobexec.core.db.store import JobStore
from jobexec.core.events import parse_scheduled_at
from jobexec.core.kafka import reliable_producer
from jobexec.testing.kafka import KafkaTopics, Record, read_records
from jobexec.testing.waiting import wait_until
from scheduling.scheduler import Scheduler
from tests.integration.bridge_support import environment


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated job database: PostgreSQL (a database of its own) or a SQLite file."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
    else:
        url = f"sqlite:///{tmp_path / 'jobs.db'}"
    engine = make_engine(make_url(url))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return url


@pytest.fixture
def engines(db_url: str) -> Iterator[list[Engine]]:
    """Engines on the job database; every one made is disposed of after the test."""
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()


def _store(db_url: str, engines: list[Engine]) -> JobStore:
    engine = make_engine(make_url(db_url))
    engines.append(engine)
    return JobStore(engine)


def _scheduler(
    kafka: KafkaTopics, store: JobStore, overrides: dict[str, str] | None = None
) -> Scheduler:
    settings = Settings.load(environment(kafka.properties(), overrides or {}))
    return Scheduler.from_settings(
        settings, store, reliable_producer(settings.kafka_client_properties)
    )


def _job(job_id: str, status: str, next_run_at: datetime, **values: Any) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "job_type": "ONE_TIME",
        "execution_mode": "SCHEDULED",
        "payload": {"task": "noop"},
        "status": status,
        "next_run_at": next_run_at,
        **values,
    }


def _all_rows(store: JobStore) -> dict[str, dict[str, Any]]:
    with store.engine.connect() as conn:
        return {row["job_id"]: dict(row) for row in conn.execute(select(jobs)).mappings()}


# --- 6 and 8. one tick -------------------------------------------------------------------------


def test_given_due_and_other_jobs_when_the_scheduler_ticks_then_only_due_ones_are_dispatched(
    kafka: KafkaTopics, db_url: str, engines: list[Engine]
) -> None:
    store = _store(db_url, engines)
    now = datetime.now(UTC)
    recurring = {
        "job_type": "RECURRING",
        "execution_mode": None,
        "cron_expression": "0 */5 * * * *",
    }
    # Given due SCHEDULED jobs of both types, and jobs that must not run
    due = {
        "job_due_one_time": _job("job_due_one_time", "SCHEDULED", now - timedelta(minutes=3)),
        "job_due_recurring": _job(
            "job_due_recurring", "SCHEDULED", now - timedelta(seconds=5), **recurring
        ),
        "job_due_exactly_now": _job(
            "job_due_exactly_now", "SCHEDULED", now - timedelta(milliseconds=1)
        ),
    }
    untouched = {
        "job_not_yet_due": _job("job_not_yet_due", "SCHEDULED", now + timedelta(hours=1)),
        "job_recurring_later": _job(
            "job_recurring_later", "SCHEDULED", now + timedelta(minutes=5), **recurring
        ),
        "job_paused": _job("job_paused", "PAUSED", now - timedelta(minutes=1), **recurring),
        "job_cancelled": _job("job_cancelled", "CANCELLED", now - timedelta(minutes=1)),
        "job_completed": _job("job_completed", "COMPLETED", now - timedelta(minutes=1)),
        "job_running": _job("job_running", "RUNNING", now - timedelta(minutes=1), attempts=1),
        "job_failed": _job(
            "job_failed", "FAILED", now - timedelta(minutes=1), failure_reason="boom"
        ),
    }
    store.insert_jobs([*due.values(), *untouched.values()])
    before = _all_rows(store)

    # When one scheduler tick runs
    claimed = _scheduler(kafka, store).tick()

    # Then the due jobs are RUNNING with attempts + 1, and nothing else changed
    assert claimed == len(due)
    after = _all_rows(store)
    for job_id in due:
        row = after[job_id]
        assert row["status"] == "RUNNING", job_id
        assert row["attempts"] == before[job_id]["attempts"] + 1 == 1, job_id
        assert row["next_run_at"] == before[job_id]["next_run_at"], job_id
        assert row["updated_at"] >= before[job_id]["updated_at"], job_id
    for job_id in untouched:
        assert after[job_id] == before[job_id], f"{job_id} changed"
    # And exactly one JobEvent per due job: key = job id, value = the JobEvent JSON
    records = read_records(kafka.bootstrap, kafka.topic, expected=len(due) + 1, timeout=2)
    assert sorted(r.key or b"" for r in records) == sorted(job_id.encode() for job_id in due)
    for record in records:
        assert record.key is not None and record.value is not None
        job_id = record.key.decode()
        event = json.loads(record.value)
        assert event["jobId"] == job_id
        assert event["attempt"] == 1
        assert parse_scheduled_at(event["scheduledAt"]) == before[job_id]["next_run_at"]

    # And a second tick finds nothing more to do
    assert _scheduler(kafka, store).tick() == 0
    again = read_records(kafka.bootstrap, kafka.topic, expected=len(due) + 1, timeout=1.5)

    def position(r: Record) -> tuple[int, int]:
        return (r.partition, r.offset)

    assert sorted(again, key=position) == sorted(records, key=position)


# --- 7. two schedulers at once -----------------------------------------------------------------


def test_given_two_schedulers_at_once_then_every_due_run_is_dispatched_exactly_once(
    kafka: KafkaTopics, db_url: str, engines: list[Engine]
) -> None:
    total = 500
    ids = [f"job_{n:04d}" for n in range(total)]
    # Given two schedulers running at once, each with its own engine and producer, claiming
    # small batches, and idle: nothing is due yet
    schedulers = [
        _scheduler(
            kafka,
            _store(db_url, engines),
            {"configs.scheduler.batch-size": "5", "configs.scheduler.max-sleep-ms": "5"},
        )
        for _ in range(2)
    ]
    stop = threading.Event()
    errors: list[BaseException] = []

    def run(scheduler: Scheduler) -> None:
        try:
            scheduler.run(stop)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in schedulers]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.5)  # both are in their idle loop, polling every 5 ms
        assert not errors, errors

        # When 500 jobs become due at the same moment
        now = datetime.now(UTC)
        _store(db_url, engines).insert_jobs(
            [
                _job(job_id, "SCHEDULED", now - timedelta(milliseconds=n))
                for n, job_id in enumerate(ids)
            ]
        )
        wait_until(
            lambda: errors or sum(s.dispatched for s in schedulers) >= total,
            45,
            message=lambda: f"dispatched {[s.dispatched for s in schedulers]} of {total}",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a scheduler did not stop"

    # Then there are exactly 500 JobEvents, one per job
    records = read_records(kafka.bootstrap, kafka.topic, expected=total, timeout=15)
    extra = read_records(kafka.bootstrap, kafka.topic, expected=total + 1, timeout=2)[total:]
    assert not extra, f"more than {total} JobEvents, e.g. {extra[0]}"
    counts = Counter(json.loads(r.value or b"null")["jobId"] for r in records)
    twice = sorted(job_id for job_id, n in counts.items() if n > 1)
    assert not twice, f"{len(twice)} runs dispatched twice, e.g. {twice[:5]}"
    assert sorted(counts) == ids
    assert len(records) == total
    assert sum(s.dispatched for s in schedulers) == total
    # (the race was real: both claimed some of them)
    assert all(s.dispatched > 0 for s in schedulers), [s.dispatched for s in schedulers]
    # And every job is RUNNING with attempts 1
    rows = _all_rows(_store(db_url, engines))
    assert Counter((row["status"], row["attempts"]) for row in rows.values()) == {
        ("RUNNING", 1): total
    }


# --- contract 10. the jobexec-task header ------------------------------------------------------


def test_given_jobs_of_several_tasks_then_each_job_event_carries_its_task_in_a_header(
    kafka: KafkaTopics, db_url: str, engines: list[Engine]
) -> None:
    store = _store(db_url, engines)
    past = datetime.now(UTC) - timedelta(seconds=5)
    # Given due jobs whose payload names a task, one whose payload has none
    store.insert_jobs(
        [
            _job("job_http", "SCHEDULED", past, payload={"task": "http", "url": "x"}),
            _job("job_mail", "SCHEDULED", past, payload={"task": "send_email"}),
            _job("job_no_task", "SCHEDULED", past, payload={"url": "x"}),
        ]
    )

    # When the scheduler dispatches them
    assert _scheduler(kafka, store).tick() == 3

    # Then each JobEvent has the job's task as its jobexec-task header, and none without a task
    records = read_records(kafka.bootstrap, kafka.topic, expected=3, timeout=15)
    headers = {(r.key or b"").decode(): r.headers.get("jobexec-task") for r in records}
    assert headers == {"job_http": b"http", "job_mail": b"send_email", "job_no_task": None}
