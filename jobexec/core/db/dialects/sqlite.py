"""SQLite (`jobexec dev`, tests): this machine's clock, serialised writers, no locks to take."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, Update, bindparam, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql.dml import Insert

from jobexec.core.db.clauses import CURRENT_TRY, JOB_COLUMNS, PAYLOAD_TASK, lost_error, lost_try
from jobexec.core.db.dialects.base import Dialect
from jobexec.core.db.records import Claim, Dispatch, Job, unclaimed
from jobexec.core.db.schema import UtcDateTime, job_runs, jobs
from jobexec.core.db.states import JobStatus, RunStatus

# SQLite serialises writers: the INSERT takes the write lock before it reads, so the count in
# {gate} cannot be passed by two claims at once.
_CLAIM = """
    INSERT INTO job_runs (job_id, run_at, attempt, worker, status, started_at, lease_expires_at,
                          task)
    SELECT job_id, next_run_at, :attempt, :worker, 'RUNNING', :now, :expires, :task
    FROM jobs WHERE job_id = :job_id AND status = 'RUNNING' AND attempts = :attempt {gate}
    ON CONFLICT (job_id, run_at, attempt) DO UPDATE
        SET worker = excluded.worker, started_at = excluded.started_at,
            lease_expires_at = excluded.lease_expires_at, status = excluded.status,
            task = excluded.task
        WHERE job_runs.finished_at IS NULL
          AND (job_runs.lease_expires_at < excluded.started_at OR job_runs.status = 'HANDED_BACK')
    RETURNING id
"""
_TIMES = (bindparam("now", type_=UtcDateTime), bindparam("expires", type_=UtcDateTime))
CLAIM_UNCAPPED = text(_CLAIM.format(gate="")).bindparams(*_TIMES)
CLAIM_CAPPED = text(
    _CLAIM.format(
        gate="""AND (SELECT count(*) FROM job_runs r
                     WHERE r.task = :task AND r.finished_at IS NULL AND r.status = 'RUNNING'
                       AND r.lease_expires_at > :now) < :cap"""
    )
).bindparams(*_TIMES)


class SQLite(Dialect):
    name = "sqlite"

    def clock(self, conn: Connection) -> datetime:
        return datetime.now(UTC)  # SQLite has no clock of its own: it is this machine's

    def statement_now(self) -> Any:
        return datetime.now(UTC)

    def claim(
        self,
        engine: Engine,
        job_id: str,
        attempt: int,
        worker: str,
        lease: timedelta,
        caps: Mapping[str, int],
    ) -> tuple[Job | None, datetime, Claim | None]:
        """Two round trips: the job row, then the claim."""
        with engine.connect() as conn:
            row = conn.execute(select(*JOB_COLUMNS).where(jobs.c.job_id == job_id)).first()
        job, now = (Job(*row) if row else None), datetime.now(UTC)
        if job is None or job.status != JobStatus.RUNNING or job.attempts != attempt:
            return job, now, None
        return job, now, self._claim(engine, job, attempt, worker, now, lease, caps)

    @staticmethod
    def _claim(
        engine: Engine,
        job: Job,
        attempt: int,
        worker: str,
        now: datetime,
        lease: timedelta,
        caps: Mapping[str, int],
    ) -> Claim:
        """The claim as one INSERT .. SELECT that re-checks the job: SQLite serialises writers,
        so a sweep that moved the job on in between makes it claim nothing."""
        task = job.payload.get("task") if isinstance(job.payload, dict) else None
        task = task[:255] if isinstance(task, str) else None
        cap = caps.get(task) if task is not None else None
        capped = cap is not None
        params = {
            "job_id": job.job_id,
            "attempt": attempt,
            "worker": worker,
            "now": now,
            "expires": now + lease,
            "task": task,
            "cap": cap,
        }
        statement = CLAIM_CAPPED if capped else CLAIM_UNCAPPED
        with engine.begin() as conn:
            run_id = conn.execute(statement, params).scalar()
            if run_id is not None:
                return Claim(run_id=int(run_id))
            held = conn.execute(
                select(
                    job_runs.c.finished_at, job_runs.c.lease_expires_at, job_runs.c.status
                ).where(
                    job_runs.c.job_id == job.job_id,
                    job_runs.c.run_at == job.next_run_at,
                    job_runs.c.attempt == attempt,
                )
            ).first()
        if held is None:
            # the job moved on meanwhile, or (capped) the cap is reached
            return Claim(capped_task=task) if capped else Claim()
        return unclaimed(
            held.finished_at is not None, held.lease_expires_at, held.status, now, task, caps
        )

    def write_outcome(self, engine: Engine, finish_run: Update, settle_job: Update) -> bool:
        with engine.begin() as conn:
            conn.execute(finish_run)
            return bool(conn.execute(settle_job).rowcount)

    @contextmanager
    def rescue(self, engine: Engine, max_attempts: int, limit: int) -> Iterator[list[Dispatch]]:
        """Committed before the block: a claim reads without locks here and would drop a task
        published ahead of the commit."""
        with engine.begin() as conn:
            rescued = self._rescue(conn, max_attempts, limit)
        yield rescued

    @staticmethod
    def _rescue(conn: Connection, max_attempts: int, limit: int) -> list[Dispatch]:
        now = datetime.now(UTC)
        # The first statement writes, so it takes SQLite's write lock: rescuers and claims
        # run one after another, and every statement below re-checks what it changes.
        lost = (
            select(job_runs.c.id)
            .select_from(jobs)
            .join(job_runs, CURRENT_TRY)
            .where(*lost_try(now), jobs.c.attempts < max_attempts)
            .order_by(job_runs.c.lease_expires_at)
            .limit(limit)
        )
        recorded = conn.execute(
            update(job_runs)
            .where(job_runs.c.id.in_(lost.scalar_subquery()))
            .values(status=RunStatus.LOST, finished_at=now, error=lost_error(job_runs.c.worker))
            .returning(job_runs.c.job_id, job_runs.c.attempt)
        ).all()
        rescued: list[Dispatch] = []
        for job_id, attempt in recorded:
            row = conn.execute(
                update(jobs)
                .where(
                    jobs.c.job_id == job_id,
                    jobs.c.status == JobStatus.RUNNING,
                    jobs.c.attempts == attempt,
                )
                .values(attempts=attempt + 1, updated_at=now)
                .returning(jobs.c.job_id, jobs.c.attempts, jobs.c.next_run_at, PAYLOAD_TASK)
            ).first()
            if row is not None:
                rescued.append(Dispatch(row.job_id, row.attempts, row.next_run_at, row.task))
        return rescued

    @contextmanager
    def pruning_lock(self, engine: Engine) -> Iterator[bool]:
        yield True  # SQLite's writers are serialised anyway

    def insert_unless_present(self, table: Table) -> Insert:
        return sqlite.insert(table).on_conflict_do_nothing()
