"""Retention by the real processes: a worker alone (no scheduler) prunes old finished tries, and
so does a scheduler alone; recent and unfinished tries and the jobs rows stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from jobexec.core.db.schema import job_runs, jobs
from jobexec.testing.stack import Stack
from jobexec.testing.waiting import wait_until


def add_try(stack: Stack, job_id: str, age: timedelta, finished: bool) -> None:
    at = datetime.now(UTC) - age
    with stack.store.engine.begin() as conn:
        conn.execute(
            insert(job_runs).values(
                job_id=job_id,
                run_at=at,
                attempt=1,
                worker="w",
                status="SUCCEEDED" if finished else "RUNNING",
                started_at=at,
                lease_expires_at=at,
                finished_at=at if finished else None,
            )
        )


def tries(stack: Stack) -> list[tuple[str, bool]]:
    with stack.store.engine.connect() as conn:
        rows = conn.execute(select(job_runs.c.job_id, job_runs.c.finished_at.is_not(None)))
        return sorted((r[0], bool(r[1])) for r in rows)


@pytest.mark.parametrize("process", ["worker", "scheduler"])
def test_given_old_history_when_only_a_process_runs_then_it_prunes_the_old_finished_tries(
    stack: Stack, process: str
) -> None:
    # Given 7-day retention and history older and newer than that
    stack.configure(overrides={"configs.history.retention-days": "7"})
    stack.insert("job_rec", {"task": "noop"}, status="COMPLETED", attempts=1)
    for n in range(3):
        add_try(stack, "job_rec", timedelta(days=8 + n), finished=True)
    add_try(stack, "job_new", timedelta(days=6), finished=True)
    add_try(stack, "job_stuck", timedelta(days=30), finished=False)

    # When only the worker (or only the scheduler) runs
    stack.start(process)

    # Then it deletes the old finished tries, at its start, and nothing else
    wait_until(
        lambda: tries(stack) == [("job_new", True), ("job_stuck", False)],
        timeout=30,
        message=lambda: f"history left: {tries(stack)}\n{stack.log(process)}",
    )
    # The log line comes just after the delete's commit.
    wait_until(
        lambda: "pruned history finished before" in stack.log(process),
        timeout=10,
        message=lambda: stack.log(process),
    )
    with stack.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(jobs)).scalar_one() == 1
