"""Rows of the jobs table as the job API writes them, inserted through `JobStore.insert_jobs`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jobexec.core.db.store import JobStore


def job_row(
    job_id: str,
    payload: Mapping[str, Any],
    *,
    status: str = "RUNNING",
    attempts: int = 1,
    job_type: str = "ONE_TIME",
    cron: str | None = None,
    next_run_at: datetime | None = None,
) -> dict[str, Any]:
    """A job as the job API writes it; RUNNING with attempts 1 is how the scheduler leaves a
    run it dispatched. `next_run_at` defaults to the database's now."""
    row: dict[str, Any] = {
        "job_id": job_id,
        "job_type": job_type,
        "execution_mode": "IMMEDIATE" if job_type == "ONE_TIME" else None,
        "cron_expression": cron,
        "payload": dict(payload),
        "status": status,
        "attempts": attempts,
    }
    if next_run_at is not None:
        row["next_run_at"] = next_run_at
    return row


def insert_rows(store: JobStore, rows: Sequence[Mapping[str, Any]], chunk: int = 1000) -> None:
    """Insert the rows `chunk` at a time, so that a large batch stays one modest statement each."""
    for start in range(0, len(rows), chunk):
        store.insert_jobs(rows[start : start + chunk])
