"""The rescuer's pass and loop, with an in-memory store: what it asks of the database and when.

Its statements run against PostgreSQL and SQLite in tests/integration/test_rescue.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from jobexec.core.db.store import Dispatch, Job, JobStore
from workers.rescue import Rescuer

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def job(job_id: str, attempts: int) -> Job:
    return Job(job_id, "ONE_TIME", None, {"task": "noop"}, "RUNNING", attempts, NOW)


class FakeStore:
    """Answers `lost_tries` from a list; records every other call."""

    def __init__(self, lost: Sequence[Job] = (), fail: int = 0) -> None:
        self.lost = list(lost)
        self.fail = fail  # passes that raise, as a database outage does
        self.calls: list[str] = []
        self.passes = threading.Semaphore(0)
        self.engine = SimpleNamespace(dispose=lambda: None)

    def lost_tries(self, limit: int) -> list[Job]:
        self.calls.append("lost_tries")
        self.passes.release()
        if self.fail:
            self.fail -= 1
            raise ConnectionError("database away\nsecond line")
        return self.lost

    @contextmanager
    def redeliver(self, lease: timedelta, limit: int) -> Iterator[list[Dispatch]]:
        self.calls.append("redeliver")
        yield []

    @contextmanager
    def rescue(self, max_attempts: int, limit: int) -> Iterator[list[Dispatch]]:
        self.calls.append("rescue")
        yield [
            Dispatch(j.job_id, j.attempts + 1, j.next_run_at)
            for j in self.lost
            if j.attempts < max_attempts
        ]

    def db_now(self) -> datetime:
        return NOW

    def settle_lost(self, job: Job, now: datetime, values: Mapping[str, Any], error: str) -> bool:
        self.calls.append(f"settle_lost:{job.job_id}")
        return True


def rescuer(store: FakeStore, published: list[Dispatch]) -> Rescuer:
    return Rescuer(
        cast(JobStore, store),
        published.extend,
        lambda: None,
        topic="job-events",
        max_attempts=3,
        batch_size=10,
        interval=0.01,
    )


def test_a_pass_that_finds_nothing_is_one_read_and_opens_no_transaction() -> None:
    store = FakeStore()
    published: list[Dispatch] = []
    assert rescuer(store, published).rescue() == 0
    assert store.calls == ["redeliver", "lost_tries"]
    assert published == []


def test_lost_tries_with_tries_left_are_published_the_spent_ones_settled() -> None:
    store = FakeStore([job("job_retry", 1), job("job_spent", 3)])
    published: list[Dispatch] = []
    assert rescuer(store, published).rescue() == 2
    assert published == [Dispatch("job_retry", 2, NOW)]
    assert store.calls == ["redeliver", "lost_tries", "rescue", "settle_lost:job_spent"]


def test_only_spent_lost_tries_need_no_rescue_transaction() -> None:
    store = FakeStore([job("job_spent", 3)])
    assert rescuer(store, []).rescue() == 1
    assert store.calls == ["redeliver", "lost_tries", "settle_lost:job_spent"]


def test_a_failing_pass_is_logged_once_per_outage_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore(fail=3)
    worker = rescuer(store, [])
    with caplog.at_level(logging.INFO, logger="jobexec.rescue"):
        worker.start()
        for _ in range(5):  # three failing passes, then two that work
            assert store.passes.acquire(timeout=5)
        worker.stop()
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert actions.count("rescue_failed") == 1
    assert actions.count("rescue_ok") == 1
    failed = next(r for r in caplog.records if getattr(r, "action", None) == "rescue_failed")
    assert "second line" not in failed.getMessage()
