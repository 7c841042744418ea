"""Pieces of statements that the store and both dialects share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func

from jobexec.core.db.schema import job_runs, jobs
from jobexec.core.db.states import JobStatus, RunStatus

# A job's payload.task as text (None when absent or not a string): what routes choose by.
PAYLOAD_TASK = jobs.c.payload["task"].as_string().label("task")

# The columns of a `Job`, in its fields' order.
JOB_COLUMNS = (
    jobs.c.job_id,
    jobs.c.job_type,
    jobs.c.cron_expression,
    jobs.c.payload,
    jobs.c.status,
    jobs.c.attempts,
    jobs.c.next_run_at,
)

# The current try of a job: the run row of its next_run_at and attempts.
CURRENT_TRY = and_(
    job_runs.c.job_id == jobs.c.job_id,
    job_runs.c.run_at == jobs.c.next_run_at,
    job_runs.c.attempt == jobs.c.attempts,
)


def lost_try(expired_by: Any) -> tuple[Any, ...]:
    """A RUNNING job's current try, unfinished, its lease expired before `expired_by`."""
    return (
        jobs.c.status == JobStatus.RUNNING,
        job_runs.c.finished_at.is_(None),
        job_runs.c.lease_expires_at < expired_by,
        # A handed-back try did not lose its worker: it is redelivered, not lost.
        job_runs.c.status != RunStatus.HANDED_BACK,
    )


def lost_error(worker: Any) -> Any:
    return "lost: the lease of worker " + func.coalesce(worker, "?") + " expired unfinished"
