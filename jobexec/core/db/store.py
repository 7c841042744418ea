"""JobStore: every statement jobexec runs against the job database, by name.

Outcome statements are guarded by `status = 'RUNNING' AND attempts = :attempt`, so a stale or
duplicate writer changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from jobexec.core.db.schema import UtcDateTime, dlq_replays, job_runs, jobs
from jobexec.core.db.states import JobStatus, RunStatus


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


# A job's payload.task as text (None when absent or not a string): what routes choose by.
_PAYLOAD_TASK = jobs.c.payload["task"].as_string().label("task")


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

# An uncapped task's try: one statement; a capped task's is left to _CLAIM_CAPPED_SQL.
_CLAIM_SQL = text(_CLAIM.format(gate="AND NOT coalesce(task = ANY(:capped), false)")).bindparams(
    bindparam("capped", type_=ARRAY(String))
)

# A capped task's try, after the task's advisory lock (_TASK_LOCK) in the same transaction:
# the lock serialises the task's claims and this statement's snapshot is taken after it, so
# two claims at once never both pass the cap. HANDED_BACK tries and expired leases hold no slot.
_CLAIM_CAPPED_SQL = text(
    _CLAIM.format(
        gate="""AND (SELECT count(*) FROM job_runs r
                     WHERE r.task = :task AND r.finished_at IS NULL AND r.status = 'RUNNING'
                       AND r.lease_expires_at > db_now) < :cap"""
    )
)

# The two-key form: a key space of its own, apart from the one-key locks (retention's).
_TASK_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('jobexec-concurrency'), hashtext(:task))")

# SQLite serialises writers: the INSERT takes the write lock before it reads, so the count in
# {gate} cannot be passed by two claims at once.
_CLAIM_SQLITE = """
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
_SQLITE_TIMES = (bindparam("now", type_=UtcDateTime), bindparam("expires", type_=UtcDateTime))
_CLAIM_SQLITE_SQL = text(_CLAIM_SQLITE.format(gate="")).bindparams(*_SQLITE_TIMES)
_CLAIM_SQLITE_CAPPED_SQL = text(
    _CLAIM_SQLITE.format(
        gate="""AND (SELECT count(*) FROM job_runs r
                     WHERE r.task = :task AND r.finished_at IS NULL AND r.status = 'RUNNING'
                       AND r.lease_expires_at > :now) < :cap"""
    )
).bindparams(*_SQLITE_TIMES)

_JOB_COLUMNS = (
    jobs.c.job_id,
    jobs.c.job_type,
    jobs.c.cron_expression,
    jobs.c.payload,
    jobs.c.status,
    jobs.c.attempts,
    jobs.c.next_run_at,
)


class JobStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    def now(self, conn: Connection) -> datetime:
        """The database's clock (SQLite has none of its own: it is this machine's)."""
        if self._sqlite:
            return datetime.now(UTC)
        value = conn.execute(select(func.now())).scalar_one()
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def db_now(self) -> datetime:
        with self.engine.connect() as conn:
            return self.now(conn)

    # --- worker -----------------------------------------------------------------------------

    def claim(
        self,
        job_id: str,
        attempt: int,
        worker: str,
        lease: timedelta,
        caps: Mapping[str, int] | None = None,
    ) -> tuple[Job | None, datetime, Claim | None]:
        """Read the job and, if this try is its current one, claim it: the job row, the
        database's now, and the claim (None when the job is missing or not at this try).

        `caps` are the concurrency caps by task: a try of a capped task is claimed only while
        fewer than its cap of that task's tries run with a live lease. One statement, one round
        trip, on PostgreSQL (a capped task's try: one more transaction); two on SQLite.
        """
        caps = caps or {}
        if self._sqlite:
            job, now = self._fetch_sqlite(job_id)
            if job is None or job.status != JobStatus.RUNNING or job.attempts != attempt:
                return job, now, None
            return job, now, self._claim_sqlite(job, attempt, worker, now, lease, caps)
        params = {
            "job_id": job_id,
            "attempt": attempt,
            "worker": worker,
            "lease": lease,
            "capped": list(caps),
        }
        # A single statement commits by itself: no BEGIN/COMMIT round trips.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            row = conn.execute(_CLAIM_SQL, params).first()
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
            with self.engine.begin() as conn:
                conn.execute(_TASK_LOCK, {"task": task})
                row = conn.execute(
                    _CLAIM_CAPPED_SQL, {**params, "task": task, "cap": caps[task]}
                ).first()
            if row is None:
                return None, datetime.now(UTC), None
        job = Job(*row[: len(_JOB_COLUMNS)])
        now = row.db_now.astimezone(UTC)
        if job.status != JobStatus.RUNNING or job.attempts != attempt:
            return job, now, None
        if row.run_id is not None:
            return job, now, Claim(run_id=int(row.run_id))
        # The data-modifying CTE is invisible to the outer query: held_* is the existing try.
        return (
            job,
            now,
            _unclaimed(row.held_finished, row.held_until, row.held_status, now, row.task, caps),
        )

    def _fetch_sqlite(self, job_id: str) -> tuple[Job | None, datetime]:
        """The job row, and now by this machine's clock (SQLite's own)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*_JOB_COLUMNS).where(jobs.c.job_id == job_id)).first()
        return (Job(*row) if row else None), datetime.now(UTC)

    def _claim_sqlite(
        self,
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
        statement = _CLAIM_SQLITE_CAPPED_SQL if capped else _CLAIM_SQLITE_SQL
        with self.engine.begin() as conn:
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
        return _unclaimed(
            held.finished_at is not None, held.lease_expires_at, held.status, now, task, caps
        )

    def touch_waiting(self, job_id: str, attempt: int) -> None:
        """A try deferred by its task's cap is still on its way: move the job's updated_at on,
        so the sweeper does not take it for a lost message and spend an attempt on it."""
        with self.engine.begin() as conn:
            now = self.now(conn)
            conn.execute(
                update(jobs)
                .where(
                    jobs.c.job_id == job_id,
                    jobs.c.status == JobStatus.RUNNING,
                    jobs.c.attempts == attempt,
                )
                .values(updated_at=now)
            )

    def renew_leases(self, run_ids: Sequence[int], lease: timedelta) -> None:
        """Extend the leases of unfinished tries to the database's now plus `lease`."""
        expiry = datetime.now(UTC) + lease if self._sqlite else func.now() + lease
        with self.engine.begin() as conn:
            conn.execute(
                update(job_runs)
                .where(job_runs.c.id.in_(run_ids), job_runs.c.finished_at.is_(None))
                .values(lease_expires_at=expiry)
            )

    def hand_back(self, run_id: int, lease: timedelta) -> None:
        """Mark an unfinished try HANDED_BACK: the next delivery of its message takes it over
        at once (the claim), while its lease, renewed for `lease`, keeps rescuers off it, so a
        graceful stop never spends an attempt. Only a lost message waits out the lease."""
        expiry = datetime.now(UTC) + lease if self._sqlite else func.now() + lease
        with self.engine.begin() as conn:
            conn.execute(
                update(job_runs)
                .where(job_runs.c.id == run_id, job_runs.c.finished_at.is_(None))
                .values(status=RunStatus.HANDED_BACK, lease_expires_at=expiry)
            )

    def cancelled_runs(self, run_ids: Sequence[int]) -> list[int]:
        """Those of these tries whose job has been cancelled: the worker tells them to stop."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(job_runs.c.id)
                .join(jobs, jobs.c.job_id == job_runs.c.job_id)
                .where(job_runs.c.id.in_(run_ids), jobs.c.status == JobStatus.CANCELLED)
            ).all()
        return [int(r.id) for r in rows]

    def finish(
        self,
        job: Job,
        attempt: int,
        run_id: int,
        now: datetime,
        run_status: RunStatus,
        job_values: Mapping[str, Any],
        error: str | None = None,
    ) -> bool:
        """Write a try's outcome: the run row and, if still this try's, the job row."""
        finish_run = (
            update(job_runs)
            # An abandoned try's late outcome must not overwrite what the watchdog recorded.
            .where(job_runs.c.id == run_id, job_runs.c.finished_at.is_(None))
            .values(status=run_status, finished_at=now, error=error)
        )
        settle_job = (
            update(jobs)
            .where(
                jobs.c.job_id == job.job_id,
                jobs.c.status == JobStatus.RUNNING,
                jobs.c.attempts == attempt,
            )
            .values(updated_at=now, **job_values)
        )
        if self._sqlite:
            with self.engine.begin() as conn:
                conn.execute(finish_run)
                return bool(conn.execute(settle_job).rowcount)
        # One statement (the run's update as a CTE), so it commits alone: one round trip.
        both = settle_job.add_cte(finish_run.returning(job_runs.c.id).cte("finished_run"))
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            return bool(conn.execute(both).rowcount)

    # --- scheduler --------------------------------------------------------------------------

    def claim_due(self, limit: int) -> list[Dispatch]:
        """Claim due SCHEDULED jobs in one statement: RUNNING, attempts + 1.

        PostgreSQL skips rows another scheduler holds; SQLite serialises writers anyway.
        """
        with self.engine.begin() as conn:
            now = self.now(conn)
            due = (
                select(jobs.c.job_id)
                .where(jobs.c.status == JobStatus.SCHEDULED, jobs.c.next_run_at <= now)
                .order_by(jobs.c.next_run_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = conn.execute(
                update(jobs)
                .where(jobs.c.job_id.in_(due), jobs.c.status == JobStatus.SCHEDULED)
                .values(status=JobStatus.RUNNING, attempts=jobs.c.attempts + 1, updated_at=now)
                .returning(jobs.c.job_id, jobs.c.attempts, jobs.c.next_run_at, _PAYLOAD_TASK)
            ).all()
        return [Dispatch(r.job_id, r.attempts, r.next_run_at, r.task) for r in rows]

    def sweep_abandoned(
        self, abandoned_after: timedelta, max_attempts: int, limit: int
    ) -> tuple[list[Dispatch], list[Job]]:
        """Runs left RUNNING with no live lease for longer than `abandoned_after`.

        Those with tries left are re-dispatched in the same statement (attempts + 1); the rest
        are returned for the caller to settle as exhausted.
        """
        with self.engine.begin() as conn:
            now = self.now(conn)
            cutoff = now - abandoned_after
            live_lease = (
                select(job_runs.c.id)
                .where(
                    job_runs.c.job_id == jobs.c.job_id,
                    job_runs.c.run_at == jobs.c.next_run_at,
                    job_runs.c.finished_at.is_(None),
                    job_runs.c.lease_expires_at > cutoff,
                )
                .exists()
            )
            abandoned = and_(
                jobs.c.status == JobStatus.RUNNING, jobs.c.updated_at < cutoff, ~live_lease
            )
            retryable = (
                select(jobs.c.job_id)
                .where(abandoned, jobs.c.attempts < max_attempts)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            rows = conn.execute(
                update(jobs)
                .where(jobs.c.job_id.in_(retryable), jobs.c.status == JobStatus.RUNNING)
                .values(attempts=jobs.c.attempts + 1, updated_at=now)
                .returning(jobs.c.job_id, jobs.c.attempts, jobs.c.next_run_at, _PAYLOAD_TASK)
            ).all()
            spent = conn.execute(
                select(*_JOB_COLUMNS)
                .where(abandoned, jobs.c.attempts >= max_attempts)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
        return [Dispatch(r.job_id, r.attempts, r.next_run_at, r.task) for r in rows], [
            Job(*r) for r in spent
        ]

    def settle(self, job: Job, now: datetime, job_values: Mapping[str, Any]) -> bool:
        """Write an outcome no try recorded (the sweeper's), if the job is still as read."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(jobs)
                .where(
                    jobs.c.job_id == job.job_id,
                    jobs.c.status == JobStatus.RUNNING,
                    jobs.c.attempts == job.attempts,
                )
                .values(updated_at=now, **job_values)
            ).rowcount
        return bool(changed)

    def seconds_until_next_due(self) -> float | None:
        with self.engine.connect() as conn:
            now = self.now(conn)
            earliest = conn.execute(
                select(func.min(jobs.c.next_run_at)).where(jobs.c.status == JobStatus.SCHEDULED)
            ).scalar()
        if earliest is None:
            return None
        if isinstance(earliest, str):  # SQLite aggregates lose the column type
            earliest = datetime.fromisoformat(earliest)
        if earliest.tzinfo is None:
            earliest = earliest.replace(tzinfo=UTC)
        return max(0.0, (earliest - now).total_seconds())

    # --- jobs -------------------------------------------------------------------------------

    def insert_jobs(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert jobs as the job API does (used by `jobexec dev`, the job CLI and tests)."""
        with self.engine.begin() as conn:
            now = self.now(conn)
            conn.execute(
                insert(jobs),
                [
                    {
                        "execution_mode": None,
                        "cron_expression": None,
                        "attempts": 0,
                        "failure_reason": None,
                        "failed_at": None,
                        "created_at": now,
                        "updated_at": now,
                        "created_by": "jobexec",
                        "next_run_at": now,
                        **row,
                    }
                    for row in rows
                ],
            )

    def tasks_of(self, job_ids: Sequence[str]) -> dict[str, str | None]:
        """Each job's payload.task, in one statement: the bridge's routes for events without
        the jobexec-task header. Jobs that do not exist are left out."""
        if not job_ids:
            return {}
        with self.engine.connect() as conn:
            return self._tasks(conn, job_ids)

    @staticmethod
    def _tasks(conn: Connection, job_ids: Sequence[str]) -> dict[str, str | None]:
        rows = conn.execute(
            select(jobs.c.job_id, _PAYLOAD_TASK).where(jobs.c.job_id.in_(set(job_ids)))
        ).all()
        return {r.job_id: r.task for r in rows}

    def job_row(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.job_id == job_id)).mappings().first()
        return dict(row) if row else None

    def runs(self, job_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(job_runs).where(job_runs.c.job_id == job_id).order_by(job_runs.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # --- views (`jobexec dev`) --------------------------------------------------------------

    def jobs_page(self, limit: int) -> list[dict[str, Any]]:
        """The first `limit` jobs by id: what a small console shows."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(jobs).order_by(jobs.c.job_id).limit(limit)).mappings()
            return [dict(r) for r in rows]

    def latest_runs(self, limit: int) -> list[dict[str, Any]]:
        """The `limit` most recent tries of any job, newest first (one indexed read, no scan)."""
        columns = (
            job_runs.c.job_id,
            job_runs.c.attempt,
            job_runs.c.status,
            job_runs.c.started_at,
            job_runs.c.finished_at,
            job_runs.c.error,
        )
        with self.engine.connect() as conn:
            rows = conn.execute(select(*columns).order_by(job_runs.c.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]

    # --- retention --------------------------------------------------------------------------
    # History rows are deleted a batch per statement, each its own short transaction, by
    # primary key: no statement holds locks on more than `batch` rows for long.

    def prune_runs(self, finished_before: datetime, batch: int) -> int:
        """Delete up to `batch` tries that finished before the cutoff; unfinished ones stay."""
        old = (
            select(job_runs.c.id)
            .where(job_runs.c.finished_at < finished_before)
            .order_by(job_runs.c.finished_at)
            .limit(batch)
            .scalar_subquery()
        )
        with self.engine.begin() as conn:
            return int(conn.execute(delete(job_runs).where(job_runs.c.id.in_(old))).rowcount)

    def prune_replays(self, replayed_before: datetime, batch: int) -> int:
        """Delete up to `batch` dead-letter replay markers older than the cutoff."""
        key = (dlq_replays.c.topic, dlq_replays.c.partition, dlq_replays.c.offset)
        old = select(*key).where(dlq_replays.c.replayed_at < replayed_before).limit(batch)
        with self.engine.begin() as conn:
            return int(conn.execute(delete(dlq_replays).where(tuple_(*key).in_(old))).rowcount)

    @contextmanager
    def pruning_lock(self) -> Iterator[bool]:
        """True for the one process allowed to prune now (a PostgreSQL advisory lock held for
        the block); on SQLite always True, its writers being serialised anyway."""
        if self._sqlite:
            yield True
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            held = bool(conn.execute(_TRY_PRUNE_LOCK).scalar())
            try:
                yield held
            finally:
                if held:
                    conn.execute(_PRUNE_UNLOCK)

    # --- rescue -----------------------------------------------------------------------------
    # A try whose lease expired unfinished lost its worker. Workers rescue such tries (see
    # workers/rescue.py); the try's run row is where a rescuer and a worker taking the same try
    # over meet: each writes it only while `finished_at IS NULL AND lease_expires_at < now`.

    def lost_tries(self, limit: int) -> list[Job]:
        """RUNNING jobs whose current try is unfinished with its lease expired; no locks.

        One statement on the (status, next_run_at) index and the try's unique key: its cost
        follows the number of RUNNING jobs, not the size of the run history.
        """
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.execute(
                select(*_JOB_COLUMNS)
                .join(job_runs, _current_try)
                .where(*self._lost_now(datetime.now(UTC)))
                .order_by(job_runs.c.lease_expires_at)
                .limit(limit)
            ).all()
        return [Job(*r) for r in rows]

    @contextmanager
    def rescue(self, max_attempts: int, limit: int) -> Iterator[list[Dispatch]]:
        """Record lost tries that have tries left as LOST and claim their next try (attempts
        + 1); yields those next tries, to be published inside the block.

        PostgreSQL: one statement that skips the job rows a claim or another rescuer holds,
        committed when the block returns and rolled back when it raises, so a try whose next
        one could not be published stays lost and is rescued again. The job rows stay locked
        meanwhile, so a worker's claim of a just-published try waits for the commit and sees
        it. SQLite: committed before the block (its claim reads without locks and would drop
        a task published ahead of the commit).
        """
        if self._sqlite:
            with self.engine.begin() as conn:
                rescued = self._rescue_sqlite(conn, max_attempts, limit)
            yield rescued
            return
        with self.engine.begin() as conn:
            rows = conn.execute(
                _RESCUE_SQL,
                {"max_attempts": max_attempts, "limit": limit, "lost": RunStatus.LOST},
            ).all()
            yield [Dispatch(r.job_id, r.attempts, r.next_run_at, r.task) for r in rows]

    def _rescue_sqlite(self, conn: Connection, max_attempts: int, limit: int) -> list[Dispatch]:
        now = datetime.now(UTC)
        # The first statement writes, so it takes SQLite's write lock: rescuers and claims
        # run one after another, and every statement below re-checks what it changes.
        lost = (
            select(job_runs.c.id)
            .select_from(jobs)
            .join(job_runs, _current_try)
            .where(*self._lost_now(now), jobs.c.attempts < max_attempts)
            .order_by(job_runs.c.lease_expires_at)
            .limit(limit)
        )
        recorded = conn.execute(
            update(job_runs)
            .where(job_runs.c.id.in_(lost.scalar_subquery()))
            .values(status=RunStatus.LOST, finished_at=now, error=_lost_error(job_runs.c.worker))
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
                .returning(jobs.c.job_id, jobs.c.attempts, jobs.c.next_run_at, _PAYLOAD_TASK)
            ).first()
            if row is not None:
                rescued.append(Dispatch(row.job_id, row.attempts, row.next_run_at, row.task))
        return rescued

    def settle_lost(
        self, job: Job, now: datetime, job_values: Mapping[str, Any], error: str
    ) -> bool:
        """Settle a job whose last try was lost and record that try EXHAUSTED, in one
        transaction; False when the try was taken over or the job moved on meanwhile."""
        with self.engine.connect() as conn:
            # The job row first, as a worker's claim locks it: one lock order, no deadlock.
            settled = conn.execute(
                update(jobs)
                .where(
                    jobs.c.job_id == job.job_id,
                    jobs.c.status == JobStatus.RUNNING,
                    jobs.c.attempts == job.attempts,
                    jobs.c.next_run_at == job.next_run_at,
                )
                .values(updated_at=now, **job_values)
            ).rowcount
            if settled:
                # Checked on the try's latest version: a takeover committed meanwhile wins.
                settled = conn.execute(
                    update(job_runs)
                    .where(
                        job_runs.c.job_id == job.job_id,
                        job_runs.c.run_at == job.next_run_at,
                        job_runs.c.attempt == job.attempts,
                        job_runs.c.finished_at.is_(None),
                        job_runs.c.lease_expires_at < now,
                    )
                    .values(status=RunStatus.EXHAUSTED, finished_at=now, error=error)
                ).rowcount
            if settled:
                conn.commit()
            else:
                conn.rollback()
        return bool(settled)

    @contextmanager
    def redeliver(self, lease: timedelta, limit: int) -> Iterator[list[Dispatch]]:
        """Handed-back tries whose lease expired before any delivery took them over (their
        requeued message was lost): renew their lease and yield them, to be published again
        at the same attempt inside the block. A graceful stop never spends an attempt.

        An autocommit read first; a transaction only when there is something to redeliver.
        """
        now = datetime.now(UTC)
        expired_by = now if self._sqlite else func.now()
        waiting = (
            job_runs.c.finished_at.is_(None),
            job_runs.c.status == RunStatus.HANDED_BACK,
            job_runs.c.lease_expires_at < expired_by,
        )
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            ids = (
                conn.execute(
                    select(job_runs.c.id)
                    .select_from(jobs)
                    .join(job_runs, _current_try)
                    .where(jobs.c.status == JobStatus.RUNNING, *waiting)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        if not ids:
            yield []
            return
        expiry = now + lease if self._sqlite else func.now() + lease
        with self.engine.begin() as conn:
            # Re-checked on each row's latest version: a takeover or another rescuer wins.
            rows = conn.execute(
                update(job_runs)
                .where(job_runs.c.id.in_(ids), *waiting)
                .values(lease_expires_at=expiry)
                .returning(job_runs.c.job_id, job_runs.c.attempt, job_runs.c.run_at)
            ).all()
            tasks = self._tasks(conn, [r.job_id for r in rows])
            yield [Dispatch(r.job_id, r.attempt, r.run_at, tasks.get(r.job_id)) for r in rows]

    def _lost_now(self, now: datetime) -> tuple[Any, ...]:
        expired_by = now if self._sqlite else func.now()
        return (
            jobs.c.status == JobStatus.RUNNING,
            job_runs.c.finished_at.is_(None),
            job_runs.c.lease_expires_at < expired_by,
            # A handed-back try did not lose its worker: it is redelivered, not lost.
            job_runs.c.status != RunStatus.HANDED_BACK,
        )


def _unclaimed(
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


# The current try of a job: the run row of its next_run_at and attempts.
_current_try = and_(
    job_runs.c.job_id == jobs.c.job_id,
    job_runs.c.run_at == jobs.c.next_run_at,
    job_runs.c.attempt == jobs.c.attempts,
)


def _lost_error(worker: Any) -> Any:
    return "lost: the lease of worker " + func.coalesce(worker, "?") + " expired unfinished"


_RESCUE_SQL = text(
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
_TRY_PRUNE_LOCK = text("SELECT pg_try_advisory_lock(hashtext('jobexec-history-retention'))")
_PRUNE_UNLOCK = text("SELECT pg_advisory_unlock(hashtext('jobexec-history-retention'))")
