"""The console's keyset pages of jobs, on PostgreSQL and SQLite: paging through a filter yields
every matching job exactly once, in (next_run_at, job_id) order, ties included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select

from jobexec.core.db.browse import Cursor, JobBrowser, JobFilter
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import jobs
from jobexec.core.db.store import JobStore

STATUSES = ("SCHEDULED", "COMPLETED", "FAILED", "PAUSED")
TASKS = ("http", "noop", "sleep")


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    url = (
        request.getfixturevalue("pg_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'jobs.db'}"
    )
    built = JobStore(make_engine(make_url(url)))
    upgrade(built.engine)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    built.insert_jobs(
        [
            {
                "job_id": f"job_{i:03d}" if i % 7 else f"other_{i:03d}",
                "job_type": "RECURRING" if i % 5 == 0 else "ONE_TIME",
                "payload": {"task": TASKS[i % 3]},
                "status": STATUSES[i % 4],
                # every 3 jobs share a next_run_at: ties the cursor must get past
                "next_run_at": base + timedelta(minutes=(i * 37 % 120) // 3),
            }
            for i in range(120)
        ]
    )
    try:
        yield built
    finally:
        built.engine.dispose()


def every_page(browser: JobBrowser, wanted: JobFilter, size: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: Cursor | None = None
    for _ in range(200):
        page = browser.jobs_page(wanted, after, size)
        assert len(page.rows) <= size
        rows.extend(page.rows)
        if page.next is None:
            return rows
        after = page.next
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(
    "wanted",
    [
        JobFilter(),
        JobFilter(statuses=("FAILED",)),
        JobFilter(statuses=("SCHEDULED", "PAUSED"), job_types=("ONE_TIME",)),
        JobFilter(task="sleep"),
        JobFilter(id_prefix="other_"),
        JobFilter(id_prefix="job_0", task="http", statuses=("COMPLETED",)),
    ],
)
def test_given_a_filter_when_paging_through_then_each_match_comes_once_in_order(
    store: JobStore, wanted: JobFilter
) -> None:
    with store.engine.connect() as conn:
        everything = [dict(r) for r in conn.execute(select(jobs)).mappings()]
    assert len(everything) == 120
    expected = sorted(
        (row["next_run_at"], row["job_id"])
        for row in everything
        if (not wanted.statuses or row["status"] in wanted.statuses)
        and (not wanted.job_types or row["job_type"] in wanted.job_types)
        and (not wanted.task or row["payload"]["task"] == wanted.task)
        and row["job_id"].startswith(wanted.id_prefix)
    )
    assert expected, "the filter should match something"

    rows = every_page(JobBrowser(store.engine), wanted, size=7)

    assert [(r["next_run_at"], r["job_id"]) for r in rows] == expected


def test_an_id_prefix_is_a_prefix_not_a_pattern(store: JobStore) -> None:
    # `_` and `%` in the prefix match themselves only
    rows = every_page(JobBrowser(store.engine), JobFilter(id_prefix="job%"), size=50)
    assert rows == []
    rows = every_page(JobBrowser(store.engine), JobFilter(id_prefix="other_0"), size=50)
    assert rows and all(r["job_id"].startswith("other_0") for r in rows)
