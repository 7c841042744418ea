"""History retention against PostgreSQL and SQLite: old finished rows go, in bounded batches;
recent rows, unfinished tries and `jobs` rows stay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, insert, make_url, select

from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import dlq_replays, job_runs, jobs
from jobexec.core.db.store import JobStore
from jobexec.core.retention import Pruner, Retention

KEEP = timedelta(days=30)


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    """A JobStore on a fresh, migrated job database of each kind."""
    url = (
        request.getfixturevalue("pg_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'jobs.db'}"
    )
    built = JobStore(make_engine(make_url(url)))
    upgrade(built.engine)
    try:
        yield built
    finally:
        built.engine.dispose()


def add_runs(store: JobStore, job_id: str, count: int, finished: datetime | None) -> None:
    """`count` tries of one job, finished at `finished` (None: still running)."""
    started = (finished or datetime.now(UTC)) - timedelta(seconds=1)
    with store.engine.begin() as conn:
        conn.execute(
            insert(job_runs),
            [
                {
                    "job_id": job_id,
                    "run_at": started - timedelta(seconds=i),
                    "attempt": 1,
                    "worker": "w1",
                    "status": "SUCCEEDED" if finished else "RUNNING",
                    "started_at": started,
                    "lease_expires_at": started + timedelta(minutes=1),
                    "finished_at": finished,
                }
                for i in range(count)
            ],
        )


def add_replays(store: JobStore, topic: str, offsets: range, replayed_at: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            insert(dlq_replays),
            [
                {"topic": topic, "partition": 0, "offset": o, "replayed_at": replayed_at}
                for o in offsets
            ],
        )


def count(store: JobStore, table: Any, *where: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def pruned_metric(table: str) -> float:
    return REGISTRY.get_sample_value("jobexec_history_pruned_total", {"table": table}) or 0.0


def test_given_old_and_recent_history_when_pruned_then_only_old_finished_rows_go(
    store: JobStore,
) -> None:
    # Given a job with old finished tries, recent ones and an old try still unfinished
    now = datetime.now(UTC)
    store.insert_jobs(
        [{"job_id": "job_old", "job_type": "RECURRING", "payload": {}, "status": "SCHEDULED"}]
    )
    add_runs(store, "job_old", 5, finished=now - KEEP - timedelta(days=1))
    add_runs(store, "job_old", 3, finished=now - KEEP + timedelta(days=1))
    with store.engine.begin() as conn:
        conn.execute(
            insert(job_runs).values(
                job_id="job_old",
                run_at=now - timedelta(days=60),
                attempt=2,
                status="RUNNING",
                started_at=now - timedelta(days=60),
                lease_expires_at=now - timedelta(days=60),
            )
        )
    add_replays(store, "jobs.DLT", range(4), now - KEEP - timedelta(hours=1))
    add_replays(store, "jobs.DLT", range(4, 6), now - timedelta(days=1))
    runs_before, replays_before = pruned_metric("job_runs"), pruned_metric("dlq_replays")

    # When retention runs
    deleted = Pruner(store, Retention(keep=KEEP, interval=1)).prune()

    # Then the 5 old finished tries and 4 old markers are gone, the rest stays
    assert deleted == {"job_runs": 5, "dlq_replays": 4}
    assert count(store, job_runs) == 4
    assert count(store, job_runs, job_runs.c.finished_at.is_(None)) == 1
    assert count(store, job_runs, job_runs.c.finished_at < now - KEEP) == 0
    assert count(store, dlq_replays) == 2
    assert count(store, jobs) == 1  # jobs rows are never deleted
    assert pruned_metric("job_runs") - runs_before == 5
    assert pruned_metric("dlq_replays") - replays_before == 4
    # And a second pass finds nothing more
    assert Pruner(store, Retention(keep=KEEP, interval=1)).prune() == {
        "job_runs": 0,
        "dlq_replays": 0,
    }


def test_given_more_old_rows_than_a_batch_when_pruned_then_no_statement_deletes_more(
    store: JobStore,
) -> None:
    # Given 2,500 old finished tries and a batch of 1,000
    old = datetime.now(UTC) - KEEP - timedelta(days=2)
    add_runs(store, "job_busy", 2500, finished=old)
    deletes: list[int] = []

    def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM JOB_RUNS"):
            deletes.append(cursor.rowcount)

    event.listen(store.engine, "after_cursor_execute", after)

    # When retention runs
    deleted = Pruner(store, Retention(keep=KEEP, interval=1, batch=1000, pause=0)).prune()

    # Then every row went, in statements of at most 1,000 rows each
    assert deleted is not None and deleted["job_runs"] == 2500
    assert deletes == [1000, 1000, 500]
    assert count(store, job_runs) == 0


def test_given_a_pruner_holding_the_lock_when_another_tries_then_it_skips_the_pass(
    pg_url: str,
) -> None:
    # PostgreSQL only: SQLite serialises writers, so there every process may prune.
    store, other = (JobStore(make_engine(make_url(pg_url))) for _ in range(2))
    upgrade(store.engine)
    try:
        add_runs(store, "job_a", 3, finished=datetime.now(UTC) - KEEP - timedelta(days=1))
        with store.pruning_lock() as first:
            # While one process prunes, another's pass is skipped and deletes nothing
            assert first
            assert Pruner(other, Retention(keep=KEEP, interval=1)).prune() is None
            assert count(store, job_runs) == 3
        # Once the lock is free, the other one prunes
        assert Pruner(other, Retention(keep=KEEP, interval=1)).prune() == {
            "job_runs": 3,
            "dlq_replays": 0,
        }
    finally:
        store.engine.dispose()
        other.engine.dispose()
