"""Submit, list, show, cancel, pause, resume and retry jobs, as an operator does.

`submit` inserts a row as the job API does (status SCHEDULED, attempts 0); `jobexec scheduler`
dispatches it when it is due. `cancel`, `pause`, `resume` and `retry` change a row only if it
still has the status they checked, so a worker finishing meanwhile is never overwritten; a
refusal is an `OperationError` naming the state the job is in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from jobexec.core.config import Settings
from jobexec.core.cron import InvalidCron, next_fire_time
from jobexec.core.db.admin import Change, JobAdmin
from jobexec.core.db.states import JobStatus, JobType
from jobexec.core.db.store import JobStore
from jobexec.core.masking import mask_text
from jobexec.core.printable import printable
from jobexec.operations.errors import InvalidInput, OperationError

# A run may be in flight: cancelling tells its running try to stop.
IN_FLIGHT = frozenset({JobStatus.RUNNING, JobStatus.DISPATCHED})
FINAL = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED})
ID_LIMIT = 255  # jobs.job_id is varchar(255)


def utc_time(value: datetime | None) -> str:
    """A time as operators read it: UTC to the second, empty when there is none."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cancelled:
    job_id: str
    was: str

    @property
    def message(self) -> str:
        note = "; its running try is told to stop" if self.was in IN_FLIGHT else ""
        return f"job {self.job_id} cancelled (was {self.was}{note})"


@dataclass(frozen=True, slots=True)
class Paused:
    job_id: str
    was: str

    @property
    def message(self) -> str:
        return f"job {self.job_id} paused (was {self.was})"


@dataclass(frozen=True, slots=True)
class Resumed:
    job_id: str
    next_run_at: datetime | None

    @property
    def message(self) -> str:
        return f"job {self.job_id} resumed, next run {utc_time(self.next_run_at)} UTC"


@dataclass(frozen=True, slots=True)
class Retried:
    job_id: str
    failure_reason: str | None  # the reason the retry cleared; the run history keeps it

    @property
    def message(self) -> str:
        reason = f": {printable(mask_text(self.failure_reason))}" if self.failure_reason else ""
        return f"job {self.job_id} scheduled again, due now (was FAILED{reason})"


JobChange = Cancelled | Paused | Resumed | Retried


@dataclass(frozen=True, slots=True)
class JobListing:
    rows: list[dict[str, Any]]
    more: bool  # rows beyond the limit exist


@dataclass(frozen=True, slots=True)
class JobHistory:
    job: dict[str, Any]
    runs: list[dict[str, Any]]


# --- submit ---------------------------------------------------------------------------------


def build_job(
    task: str,
    payload: dict[str, Any],
    at: datetime | None,
    cron: str | None,
    job_id: str | None,
    created_by: str,
    now: datetime,
) -> dict[str, Any]:
    """The jobs row of a submitted job, as the job API writes it (insert_jobs fills the rest).

    InvalidInput, worded with the `jobs submit` option at fault, when the row cannot be built.
    """
    if "task" in payload and payload["task"] != task:
        raise InvalidInput(f"--payload has task {payload['task']!r} but --task is {task!r}")
    job_id = job_id if job_id is not None else f"job_{uuid.uuid4()}"
    if not job_id.strip() or len(job_id) > ID_LIMIT:
        raise InvalidInput(f"--id must be 1 to {ID_LIMIT} characters")
    if not created_by.strip():
        raise InvalidInput("--created-by must not be empty")
    row: dict[str, Any] = {
        "job_id": job_id,
        "payload": {**payload, "task": task},
        "status": JobStatus.SCHEDULED,
        "attempts": 0,
        "created_by": created_by,
    }
    if cron is not None:
        try:
            next_run = next_fire_time(cron, now)
        except InvalidCron as exc:
            raise InvalidInput(f"invalid --cron: {exc}") from None
        return row | {
            "job_type": JobType.RECURRING,
            "cron_expression": cron.strip(),
            "next_run_at": next_run,
        }
    if at is not None:
        return row | {
            "job_type": JobType.ONE_TIME,
            "execution_mode": "SCHEDULED",
            "next_run_at": at,
        }
    return row | {"job_type": JobType.ONE_TIME, "execution_mode": "IMMEDIATE", "next_run_at": now}


def check_task(task: str, settings: Settings) -> None:
    """InvalidInput unless an installed executor serves `task`."""
    from executors.registry import load_registry

    try:
        registry = load_registry(settings)
    except Exception as exc:  # a broken plugin: configuration, not the operator's input
        raise InvalidInput(f"cannot load the executors: {exc}") from None
    try:
        known = registry.tasks
    finally:
        registry.close()
    if task not in known:
        raise InvalidInput(f"unknown task {task!r}; known tasks: {', '.join(known)}")


# --- the operations on a job database -------------------------------------------------------


class JobOperations:
    """What an operator does to the jobs table; each change conditional on the status seen."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.admin = JobAdmin(store)

    def submit(
        self,
        task: str,
        payload: dict[str, Any],
        at: datetime | None,
        cron: str | None,
        job_id: str | None,
        created_by: str,
    ) -> str:
        """Insert the job, due by the database's clock; its job id."""
        row = build_job(task, payload, at, cron, job_id, created_by, self.store.db_now())
        try:
            self.store.insert_jobs([row])
        except IntegrityError:
            raise OperationError(f"job {row['job_id']} already exists") from None
        return str(row["job_id"])

    def list_jobs(self, statuses: list[str], types: list[str], limit: int) -> JobListing:
        """Up to `limit` jobs, next run first, and whether there are more."""
        rows = self.admin.list_jobs(statuses, types, limit + 1)
        return JobListing(rows[:limit], len(rows) > limit)

    def history(self, job_id: str) -> JobHistory:
        """The job's row and its runs, unmasked: whoever shows them masks them."""
        row = self._row(job_id)
        return JobHistory(row, self.store.runs(job_id))

    def cancel(self, job_id: str) -> Cancelled:
        row = self._row(job_id)
        status = row["status"]
        if status in FINAL:
            raise OperationError(f"job {job_id} is already {status}, which is final")
        self._applied(job_id, self.admin.cancel(job_id, status))
        return Cancelled(job_id, status)

    def pause(self, job_id: str) -> Paused:
        row = self._row_in(job_id, JobStatus.SCHEDULED, "paused")
        self._applied(job_id, self.admin.pause(job_id))
        return Paused(job_id, row["status"])

    def resume(self, job_id: str) -> Resumed:
        row = self._row_in(job_id, JobStatus.PAUSED, "resumed")
        cron = row["cron_expression"] if row["job_type"] == JobType.RECURRING else None
        try:
            change = self.admin.resume(job_id, cron)
        except InvalidCron as exc:
            raise OperationError(f"job {job_id} stays PAUSED: {exc}") from None
        resumed = self.store.job_row(job_id) if change.applied else None
        if resumed is None:
            raise _changed_meanwhile(job_id, change)
        return Resumed(job_id, resumed["next_run_at"])

    def retry(self, job_id: str) -> Retried:
        row = self._row(job_id)
        if row["status"] != JobStatus.FAILED:
            raise OperationError(
                f"job {job_id} is {row['status']}: only a FAILED job can be retried"
            )
        self._applied(job_id, self.admin.retry(job_id))
        return Retried(job_id, row["failure_reason"])

    def _row(self, job_id: str) -> dict[str, Any]:
        row = self.store.job_row(job_id)
        if row is None:
            raise OperationError(f"no job {job_id}")
        return row

    def _row_in(self, job_id: str, status: str, done: str) -> dict[str, Any]:
        """The job's row if it has `status`; otherwise a refusal naming the state it is in."""
        row = self._row(job_id)
        if row["status"] != status:
            raise OperationError(
                f"job {job_id} is {row['status']}: only a {status} job can be {done}"
            )
        return row

    @staticmethod
    def _applied(job_id: str, change: Change) -> None:
        if not change.applied:
            raise _changed_meanwhile(job_id, change)


def _changed_meanwhile(job_id: str, change: Change) -> OperationError:
    return OperationError(f"job {job_id} changed meanwhile (now {change.status}); try again")
