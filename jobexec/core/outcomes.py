"""What each outcome writes to the job row (README: Outcomes), shared by worker and sweeper."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobexec.core.cron import InvalidCron, next_fire_time
from jobexec.core.db.states import JobStatus, JobType
from jobexec.core.db.store import Job
from jobexec.core.deadletter import DeadLetter
from jobexec.core.events import JobEvent, Origin

REASON_LIMIT = 2000
EXHAUSTED_FQCN = "jobexec.AttemptsExhausted"


def succeeded(job: Job, now: datetime) -> dict[str, Any]:
    """ONE_TIME completes; RECURRING waits for its next fire time after now, no replay."""
    if job.job_type == JobType.RECURRING:
        next_run = next_fire_time(job.cron_expression, now)
        return {"status": JobStatus.SCHEDULED, "attempts": 0, "next_run_at": next_run}
    return {"status": JobStatus.COMPLETED}


def failed(reason: str, now: datetime) -> dict[str, Any]:
    return {"status": JobStatus.FAILED, "failure_reason": reason[:REASON_LIMIT], "failed_at": now}


def exhaustion_reason(attempts: int, error: str) -> str:
    return f"attempts exhausted after {attempts} tries: {error}"[:REASON_LIMIT]


def exhausted(job: Job, reason: str, now: datetime) -> dict[str, Any]:
    """ONE_TIME fails; RECURRING is scheduled as after a success, the failure recorded."""
    values: dict[str, Any] = {"failure_reason": reason, "failed_at": now}
    if job.job_type == JobType.RECURRING:
        try:
            next_run = next_fire_time(job.cron_expression, now)
            return values | {"status": JobStatus.SCHEDULED, "attempts": 0, "next_run_at": next_run}
        except InvalidCron:
            pass
    return values | {"status": JobStatus.FAILED}


def exhausted_letter(event: JobEvent, reason: str, origin: Origin) -> DeadLetter:
    """The dead-letter record of an exhausted run: its JobEvent, keyed by the job id."""
    return DeadLetter(
        key=event.job_id.encode(),
        value=event.to_json(),
        exception_fqcn=EXHAUSTED_FQCN,
        message=reason,
        origin=origin,
    )
