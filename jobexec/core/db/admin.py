"""Operator statements of the job CLI: list, cancel, pause, resume, retry, re-arm, and the DLT
replay markers.

Kept apart from `store.py`, whose queries serve the running service; these serve a person.
Every change is conditional on the status the operator saw, so a job that moved meanwhile is
left alone and reported instead of overwritten.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from jobexec.core.cron import next_fire_time
from jobexec.core.db.schema import dlq_replays, jobs
from jobexec.core.db.states import JobStatus
from jobexec.core.db.store import JobStore


@dataclass(frozen=True, slots=True)
class Change:
    """The outcome of a conditional update: whether it applied, and the status found."""

    applied: bool
    status: str | None  # None: the job does not exist
    at: datetime | None = None  # the database's now when it applied


class JobAdmin:
    """The statements behind `jobexec jobs ...` and `jobexec dlq replay`."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.engine = store.engine

    def list_jobs(
        self, statuses: Sequence[str], job_types: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        """Jobs in scheduling order (next run first), filtered by status and type."""
        query = select(jobs).order_by(jobs.c.next_run_at, jobs.c.job_id).limit(limit)
        if statuses:
            query = query.where(jobs.c.status.in_(list(statuses)))
        if job_types:
            query = query.where(jobs.c.job_type.in_(list(job_types)))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def cancel(self, job_id: str, seen_status: str) -> Change:
        """CANCELLED, if the job still has the status the caller checked."""
        return self._change(job_id, seen_status, {"status": JobStatus.CANCELLED})

    def pause(self, job_id: str) -> Change:
        """A SCHEDULED job to PAUSED: schedulers dispatch only SCHEDULED jobs."""
        return self._change(job_id, JobStatus.SCHEDULED, {"status": JobStatus.PAUSED})

    def resume(self, job_id: str, cron_expression: str | None) -> Change:
        """A PAUSED job back to SCHEDULED. A recurring job (`cron_expression` given) is due at
        its next fire time after the database's now, missed fires not replayed; a one-time job
        keeps its next_run_at. InvalidCron when the expression does not parse."""
        next_run = (
            None if cron_expression is None else (lambda now: next_fire_time(cron_expression, now))
        )
        return self._change(
            job_id, JobStatus.PAUSED, {"status": JobStatus.SCHEDULED}, next_run=next_run
        )

    def retry(self, job_id: str) -> Change:
        """A FAILED job back to SCHEDULED, due now, attempts 0, its failure cleared."""
        return self._change(
            job_id,
            JobStatus.FAILED,
            {
                "status": JobStatus.SCHEDULED,
                "attempts": 0,
                "failure_reason": None,
                "failed_at": None,
            },
            due_now=True,
        )

    def rearm(self, job_id: str) -> tuple[Change, dict[str, Any] | None]:
        """A FAILED job to RUNNING with attempts 1 as a new run (next_run_at = now).

        The new next_run_at matters: with attempt 1 it names a try the run history has not
        seen, so the worker claims it instead of dropping it as a duplicate of a finished try.
        Returns the change and the row as it was before, for `undo_rearm`.
        """
        before = self.store.job_row(job_id)
        if before is None:
            return Change(False, None), None
        change = self._change(
            job_id,
            JobStatus.FAILED,
            {"status": JobStatus.RUNNING, "attempts": 1, "failure_reason": None, "failed_at": None},
            due_now=True,
        )
        return change, before

    def undo_rearm(self, before: dict[str, Any], rearmed_at: datetime) -> bool:
        """Put a re-armed job back as it was, if nothing has touched it since."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(jobs)
                .where(
                    jobs.c.job_id == before["job_id"],
                    jobs.c.status == JobStatus.RUNNING,
                    jobs.c.attempts == 1,
                    jobs.c.next_run_at == rearmed_at,
                    jobs.c.updated_at == rearmed_at,
                )
                .values(
                    status=before["status"],
                    attempts=before["attempts"],
                    next_run_at=before["next_run_at"],
                    failure_reason=before["failure_reason"],
                    failed_at=before["failed_at"],
                    updated_at=self.store.now(conn),
                )
            ).rowcount
        return bool(changed)

    def _change(
        self,
        job_id: str,
        seen_status: str,
        values: dict[str, Any],
        due_now: bool = False,
        next_run: Callable[[datetime], datetime] | None = None,
    ) -> Change:
        with self.engine.begin() as conn:
            now = self.store.now(conn)
            extra = {"next_run_at": now} if due_now else {}
            if next_run is not None:
                extra = {"next_run_at": next_run(now)}
            changed = conn.execute(
                update(jobs)
                .where(jobs.c.job_id == job_id, jobs.c.status == seen_status)
                .values(updated_at=now, **values, **extra)
            ).rowcount
            if changed:
                return Change(True, str(values["status"]), now)
            status = conn.execute(select(jobs.c.status).where(jobs.c.job_id == job_id)).scalar()
        return Change(False, status)

    # --- dead-letter replays ----------------------------------------------------------------

    def mark_replayed(self, topic: str, partition: int, offset: int) -> bool:
        """Record that a DLT record is being replayed; False when it already was."""
        with self.engine.begin() as conn:
            stmt = self.store.dialect.insert_unless_present(dlq_replays).values(
                topic=topic, partition=partition, offset=offset, replayed_at=self.store.now(conn)
            )
            inserted = conn.execute(stmt).rowcount
        return bool(inserted)

    def unmark_replayed(self, topic: str, partition: int, offset: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(dlq_replays).where(
                    dlq_replays.c.topic == topic,
                    dlq_replays.c.partition == partition,
                    dlq_replays.c.offset == offset,
                )
            )

    def replayed(self, topic: str) -> dict[tuple[int, int], datetime]:
        """(partition, offset) -> when, for every record of `topic` already replayed."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    dlq_replays.c.partition, dlq_replays.c.offset, dlq_replays.c.replayed_at
                ).where(dlq_replays.c.topic == topic)
            ).all()
        return {(r.partition, r.offset): r.replayed_at for r in rows}
