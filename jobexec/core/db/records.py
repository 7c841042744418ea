"""What the job store's statements return: a job as a try sees it, a claim, a dispatch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jobexec.core.db.states import RunStatus


@dataclass(frozen=True, slots=True)
class Job:
    job_id: str
    job_type: str
    cron_expression: str | None
    payload: Any
    status: str
    attempts: int
    next_run_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """The result of claiming a try: ours (`run_id`), or held by a live lease, or finished,
    or over its task's concurrency cap (`capped_task`: the try waits, no attempt spent)."""

    run_id: int | None = None
    lease_expires_at: datetime | None = None
    capped_task: str | None = None


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A run the scheduler (or sweeper) claimed and must publish as a JobEvent."""

    job_id: str
    attempt: int
    scheduled_at: datetime
    task: str | None = None  # the job's payload.task: the JobEvent's jobexec-task header


def unclaimed(
    finished: bool,
    held_until: datetime | None,
    held_status: str | None,
    now: datetime,
    task: str | None,
    caps: Mapping[str, int],
) -> Claim:
    """Why a try of a job at this attempt was not claimed, from its existing run row."""
    if finished:
        return Claim()  # the try finished: a duplicate
    live = held_until is not None and held_until.astimezone(UTC) > now
    if live and held_status == RunStatus.RUNNING:
        return Claim(lease_expires_at=held_until)  # it runs elsewhere
    if task is not None and task in caps:
        return Claim(capped_task=task)  # free to take over, but the task's cap is reached
    if held_until is None:
        return Claim()  # the job moved on meanwhile
    return Claim(lease_expires_at=held_until)
