"""The view of `jobexec dev`: redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, make_url

from jobexec.cli.dev_view import RUNS_SHOWN, View
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import job_runs
from jobexec.core.db.store import JobStore

HEADER = ["jobexec dev: working folder /x", "  Flower http://127.0.0.1:1/"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    store = JobStore(make_engine(make_url(f"sqlite:///{tmp_path / 'jobs.db'}")))
    upgrade(store.engine)
    store.insert_jobs(
        [
            {
                "job_id": "job_a",
                "job_type": "ONE_TIME",
                "payload": {"task": "noop"},
                "status": "SCHEDULED",
            }
        ]
    )
    start = datetime(2025, 1, 1, 12, tzinfo=UTC)
    with store.engine.begin() as conn:
        conn.execute(
            insert(job_runs),
            [
                {
                    "job_id": "job_a",
                    "run_at": start,
                    "attempt": n,
                    "status": "FAILED" if n < 20 else "SUCCEEDED",
                    "started_at": start + timedelta(seconds=n),
                    "lease_expires_at": start + timedelta(seconds=n + 60),
                    "finished_at": start + timedelta(seconds=n, milliseconds=500),
                }
                for n in range(1, 21)
            ],
        )
    return store


def test_latest_runs_reads_only_the_newest_tries(store: JobStore) -> None:
    runs = store.latest_runs(3)

    assert [r["attempt"] for r in runs] == [20, 19, 18]


def test_on_a_terminal_each_frame_clears_the_screen_and_shows_the_header(store: JobStore) -> None:
    out = Terminal()
    view = View(store, HEADER, out)

    view.draw()
    view.draw()

    frames = out.getvalue().split("\x1b[H\x1b[2J")
    assert frames[0] == ""
    assert len(frames) == 3
    assert all(frame.startswith(HEADER[0]) for frame in frames[1:])


def test_into_a_file_frames_are_plain_lines_without_escapes_or_header(store: JobStore) -> None:
    out = io.StringIO()
    view = View(store, HEADER, out)

    view.draw()

    text = out.getvalue()
    assert "\x1b" not in text
    assert HEADER[0] not in text
    lines = text.splitlines()
    job_line = next(line for line in lines if line.strip().startswith("job_a"))
    assert job_line.split()[-1] == "SUCCEEDED"  # its newest try
    tries = [line for line in lines if " try " in line]
    assert len(tries) == RUNS_SHOWN
    assert "try 20" in tries[0]


def test_a_job_whose_last_try_is_older_than_the_latest_tries_still_shows_it(
    store: JobStore,
) -> None:
    store.insert_jobs(
        [{"job_id": "job_b", "job_type": "ONE_TIME", "payload": {}, "status": "FAILED"}]
    )
    long_ago = datetime(2024, 6, 1, tzinfo=UTC)
    later = datetime(2025, 1, 2, tzinfo=UTC)

    def try_of(job_id: str, attempt: int, status: str, at: datetime) -> dict[str, Any]:
        return {
            "job_id": job_id,
            "run_at": at,
            "attempt": attempt,
            "status": status,
            "started_at": at,
            "lease_expires_at": at,
            "finished_at": at,
        }

    with store.engine.begin() as conn:
        conn.execute(insert(job_runs), [try_of("job_b", 1, "EXHAUSTED", long_ago)])
        # Then more tries of job_a than the view lists: job_b's is not among the latest.
        conn.execute(
            insert(job_runs),
            [try_of("job_a", n, "SUCCEEDED", later) for n in range(21, 22 + RUNS_SHOWN)],
        )
    out = io.StringIO()

    View(store, HEADER, out).draw()

    lines = out.getvalue().splitlines()
    job_line = next(line for line in lines if line.strip().startswith("job_b"))
    assert job_line.split()[-1] == "EXHAUSTED"
    assert not any("job_b" in line for line in lines if " try " in line)  # not a latest try


def test_a_job_without_tries_shows_a_dash(store: JobStore) -> None:
    store.insert_jobs(
        [{"job_id": "job_c", "job_type": "ONE_TIME", "payload": {}, "status": "SCHEDULED"}]
    )
    out = io.StringIO()

    View(store, HEADER, out).draw()

    job_line = next(line for line in out.getvalue().splitlines() if "job_c" in line)
    assert job_line.split()[-1] == "-"


def test_a_frame_reads_shown_rows_only_through_indexes(store: JobStore) -> None:
    # Many jobs and tries: a frame's statements must not read or sort them all.
    store.insert_jobs(
        [
            {"job_id": f"job_x{n:03}", "job_type": "ONE_TIME", "payload": {}, "status": "PAUSED"}
            for n in range(50)
        ]
    )
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, *_rest: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append((sql, params))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        View(store, HEADER, io.StringIO()).draw()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)

    assert len(statements) == 2
    with store.engine.connect() as conn:
        for sql, params in statements:
            assert "LIMIT" in sql.upper()
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert not any("TEMP B-TREE" in step for step in plan), plan  # no sort of all rows
            runs = [step for step in plan if "job_runs" in step]
            assert all("INDEX" in step or step == "SCAN job_runs" for step in runs), plan
