"""The growth benchmark's filled database is a history jobexec can live with: statuses as the
benchmark reports them, open tries that no rescuer or sweeper takes, and a retention backlog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, make_url, text

from bench import history_fill
from bench.growth import retention_pass
from jobexec.core.db.browse import JobTally
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.store import JobStore

JOBS = 2_000
RUNS = 10_000


@pytest.fixture
def filled(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(make_url(pg_url))
    upgrade(engine)
    history_fill.fill(engine, JOBS, RUNS)
    yield engine
    engine.dispose()


def test_given_a_filled_database_then_99_percent_of_its_jobs_are_finished(
    filled: Engine,
) -> None:
    counts = JobTally(filled).status_counts()

    assert sum(counts.values()) == JOBS
    assert counts["COMPLETED"] + counts["FAILED"] == JOBS * 99 // 100
    assert counts["SCHEDULED"] > 0 and counts["RUNNING"] > 0
    with filled.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_runs")).scalar_one() == RUNS


def test_given_a_filled_database_then_no_rescuer_or_sweeper_takes_its_running_jobs(
    filled: Engine,
) -> None:
    store = JobStore(filled)

    # Then every RUNNING job's current try is open and leased, so nothing is lost or abandoned
    assert store.lost_tries(100) == []
    dispatched, spent = store.sweep_abandoned(timedelta(seconds=0), 3, 100)
    assert (dispatched, spent) == ([], [])
    # And nothing is due for the scheduler
    assert store.claim_due(100) == []


def test_given_a_filled_database_when_retention_passes_then_the_runs_past_30_days_go(
    filled: Engine,
) -> None:
    with filled.connect() as conn:
        old = conn.execute(
            text("SELECT count(*) FROM job_runs WHERE finished_at < now() - interval '30 days'")
        ).scalar_one()

    sweep = retention_pass(JobStore(filled))

    # The oldest sixth of a 36-day history is past the default 30 days, in batches of 1000
    assert RUNS // 7 < old < RUNS // 5
    assert sweep["deleted_runs"] == old
    assert sweep["batches"] == old // 1000 + 1
    with filled.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_runs")).scalar_one() == RUNS - old


def test_given_jobs_when_counted_by_id_then_only_those_jobs_are_counted(filled: Engine) -> None:
    with filled.connect() as conn:
        ids = list(conn.execute(text("SELECT job_id FROM jobs ORDER BY job_id LIMIT 50")).scalars())
        expected = dict(
            conn.execute(
                text("SELECT status, count(*) FROM jobs WHERE job_id = ANY(:ids) GROUP BY 1"),
                {"ids": ids},
            ).all()
        )

    assert JobTally(filled).status_counts_among(ids) == expected
    assert sum(expected.values()) == 50
    assert JobTally(filled).status_counts_among(["job_missing"]) == {}
