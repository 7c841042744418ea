"""The view of `jobexec dev`: redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, make_url

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
