"""PostgreSQL: the database's clock, one-statement claims and outcomes, advisory locks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, String, Table, Update, bindparam, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.dml import Insert

from jobexec.core.db.dialects.base import Dialect
from jobexec.core.db.records import Claim, Dispatch, Job, unclaimed
from jobexec.core.db.schema import job_runs
from jobexec.core.db.states import JobStatus, RunStatus

# The claim of a try: {gate} is what else must hold for the try to be claimed.
_CLAIM = """
    WITH job AS (
        -- FOR SHARE: a sweeper's concurrent re-dispatch (FOR UPDATE SKIP LOCKED) skips this
        -- row until the claim is committed, and a committed one is seen here.
        SELECT job_id, job_type, cron_expression, payload, status, attempts, next_run_at,
               now() AS db_now, payload ->> 'task' AS task
        FROM jobs WHERE job_id = :job_id
        FOR SHARE
    ), claimed AS (
        INSERT INTO job_runs (job_id, run_at, attempt, worker, status, started_at,
                              lease_expires_at, task)
        SELECT job_id, next_run_at, :attempt, :worker, 'RUNNING', db_now, db_now + :lease,
               left(task, 255)
        FROM job WHERE status = 'RUNNING' AND attempts = :attempt {gate}
        ON CONFLICT (job_id, run_at, attempt) DO UPDATE
            SET worker = excluded.worker, started_at = excluded.started_at,
                lease_expires_at = excluded.lease_expires_at, status = excluded.status,
                task = excluded.task
            WHERE job_runs.finished_at IS NULL
              AND (job_runs.lease_expires_at < excluded.started_at
                   OR job_runs.status = 'HANDED_BACK')
        RETURNING id
    )
    SELECT job.job_id, job.job_type, job.cron_expression, job.payload, job.status,
           job.attempts, job.next_run_at, job.db_now, job.task,
           (SELECT id FROM claimed) AS run_id,
           held.finished_at IS NOT NULL AS held_finished,
           held.lease_expires_at AS held_until, held.status AS held_status
    FROM job
    LEFT JOIN job_runs held ON held.job_id = job.job_id AND held.run_at = job.next_run_at
                           AND held.attempt = :attempt
"""
_JOB_FIELDS = 7  # the claim's first columns are a Job's fields

# An uncapped task's try: one statement; a capped task's is left to CLAIM_CAPPED.
CLAIM_UNCAPPED = text(
    _CLAIM.format(gate="AND NOT coalesce(task = ANY(:capped), false)")
).bindparams(bindparam("capped", type_=postgresql.ARRAY(String)))

# A capped task's try, after the task's advisory lock (TASK_LOCK) in the same transaction:
# the lock serialises the task's claims and this statement's snapshot is taken after it, so
# two claims at once never both pass the cap. HANDED_BACK tries and expired leases hold no slot.
CLAIM_CAPPED = text(
    _CLAIM.format(
        gate="""AND (SELECT count(*) FROM job_runs r
                     WHERE r.task = :task AND r.finished_at IS NULL AND r.status = 'RUNNING'
                       AND r.lease_expires_at > db_now) < :cap"""
    )
)

# The two-key form: a key space of its own, apart from the one-key locks (retention's).
TASK_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('jobexec-concurrency'), hashtext(:task))")

RESCUE = text(
    """
    WITH lost AS (
        SELECT j.job_id, j.attempts, j.next_run_at
        FROM jobs j
        JOIN job_runs r ON r.job_id = j.job_id AND r.run_at = j.next_run_at
                       AND r.attempt = j.attempts
        WHERE j.status = 'RUNNING' AND j.attempts < :max_attempts
          AND r.finished_at IS NULL AND r.lease_expires_at < now()
          AND r.status <> 'HANDED_BACK'
        ORDER BY r.lease_expires_at
        LIMIT :limit
        FOR UPDATE OF j SKIP LOCKED
    ), recorded AS (
        -- Checked again on the row's latest version: a worker's takeover of the same try,
        -- committed after this statement began, wins and the try is left alone.
        UPDATE job_runs r
        SET status = :lost, finished_at = now(),
            error = 'lost: the lease of worker ' || coalesce(r.worker, '?')
                    || ' expired unfinished'
        FROM lost
        WHERE r.job_id = lost.job_id AND r.run_at = lost.next_run_at
          AND r.attempt = lost.attempts
          AND r.finished_at IS NULL AND r.lease_expires_at < now()
          AND r.status <> 'HANDED_BACK'
        RETURNING r.job_id, r.attempt
    )
    UPDATE jobs j SET attempts = j.attempts + 1, updated_at = now()
    FROM recorded
    WHERE j.job_id = recorded.job_id AND j.status = 'RUNNING' AND j.attempts = recorded.attempt
    RETURNING j.job_id, j.attempts, j.next_run_at, j.payload ->> 'task' AS task
    """
)

# One pruner at a time across schedulers and workers: a session-level advisory lock.
TRY_PRUNE_LOCK = text("SELECT pg_try_advisory_lock(hashtext('jobexec-history-retention'))")
PRUNE_UNLOCK = text("SELECT pg_advisory_unlock(hashtext('jobexec-history-retention'))")


class PostgreSQL(Dialect):
    name = "postgresql"

    def clock(self, conn: Connection) -> datetime:
        value = conn.execute(select(func.now())).scalar_one()
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def statement_now(self) -> Any:
        return func.now()

    def claim(
        self,
        engine: Engine,
        job_id: str,
        attempt: int,
        worker: str,
        lease: timedelta,
        caps: Mapping[str, int],
    ) -> tuple[Job | None, datetime, Claim | None]:
        """One statement, one round trip (a capped task's try: one more transaction)."""
        params = {
            "job_id": job_id,
            "attempt": attempt,
            "worker": worker,
            "lease": lease,
            "capped": list(caps),
        }
        # A single statement commits by itself: no BEGIN/COMMIT round trips.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(CLAIM_UNCAPPED, params).first()
        if row is None:
            return None, datetime.now(UTC), None
        if (
            row.run_id is None
            and row.task in caps
            and (row.status, row.attempts) == (JobStatus.RUNNING, attempt)
            and not row.held_finished
        ):
            # Not claimed as the task is capped: claim it again, counted under the task's lock.
            task = row.task
            with engine.begin() as conn:
                conn.execute(TASK_LOCK, {"task": task})
                row = conn.execute(
                    CLAIM_CAPPED, {**params, "task": task, "cap": caps[task]}
                ).first()
            if row is None:
                return None, datetime.now(UTC), None
        job = Job(*row[:_JOB_FIELDS])
        now = row.db_now.astimezone(UTC)
        if job.status != JobStatus.RUNNING or job.attempts != attempt:
            return job, now, None
        if row.run_id is not None:
            return job, now, Claim(run_id=int(row.run_id))
        # The data-modifying CTE is invisible to the outer query: held_* is the existing try.
        return (
            job,
            now,
            unclaimed(row.held_finished, row.held_until, row.held_status, now, row.task, caps),
        )

    def write_outcome(self, engine: Engine, finish_run: Update, settle_job: Update) -> bool:
        # One statement (the run's update as a CTE), so it commits alone: one round trip.
        both = settle_job.add_cte(finish_run.returning(job_runs.c.id).cte("finished_run"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return bool(conn.execute(both).rowcount)

    @contextmanager
    def rescue(self, engine: Engine, max_attempts: int, limit: int) -> Iterator[list[Dispatch]]:
        """One statement that skips the job rows a claim or another rescuer holds, committed
        when the block returns and rolled back when it raises, so a try whose next one could
        not be published stays lost and is rescued again. The job rows stay locked meanwhile,
        so a worker's claim of a just-published try waits for the commit and sees it."""
        with engine.begin() as conn:
            rows = conn.execute(
                RESCUE, {"max_attempts": max_attempts, "limit": limit, "lost": RunStatus.LOST}
            ).all()
            yield [Dispatch(r.job_id, r.attempts, r.next_run_at, r.task) for r in rows]

    @contextmanager
    def pruning_lock(self, engine: Engine) -> Iterator[bool]:
        """A session-level advisory lock, held for the block."""
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            held = bool(conn.execute(TRY_PRUNE_LOCK).scalar())
            try:
                yield held
            finally:
                if held:
                    conn.execute(PRUNE_UNLOCK)

    def insert_unless_present(self, table: Table) -> Insert:
        return postgresql.insert(table).on_conflict_do_nothing()
