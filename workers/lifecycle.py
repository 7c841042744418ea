"""One try of a job's run: validate the JobEvent, claim the try, execute, write the outcome.

The executor runs outside any transaction or row lock; the claim and the outcome are one short
transaction each. Only this module writes job and run states.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from executors import JobRun, PermanentError, Registry, TransientError
from jobexec import metrics, outcomes
from jobexec.cron import InvalidCron, next_fire_time
from jobexec.db.states import JobType, RunStatus
from jobexec.db.store import Job, JobStore
from jobexec.deadletter import DeadLetterError, DeadLetterWriter
from jobexec.events import JobEvent
from workers.lease import LeaseKeeper
from workers.retry import RetryPolicy

log = logging.getLogger("jobexec.worker")

_RUN_KEY_NAMESPACE = uuid.UUID("6f1c9a52-8a55-4f57-9d84-2f7a1b0c3e11")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the JobEvent came from, for the dead-letter headers."""

    topic: str
    partition: int
    offset: int


@dataclass
class WorkerContext:
    """What a worker process needs to run jobs; built once per process."""

    store: JobStore
    registry: Registry
    retry: RetryPolicy
    lease: timedelta
    leases: LeaseKeeper
    dead_letters: DeadLetterWriter | None
    events_topic: str


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The try failed transiently and the next one is recorded: publish it after `delay`."""

    attempt: int
    delay: float


class _Clock:
    """The database's clock, read once per try and carried forward locally."""

    def __init__(self, db_now: datetime) -> None:
        self.skew = db_now - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.skew


def run_key(job: Job) -> str:
    """Idempotency key: the same for every try of one run, different for the next run."""
    return str(uuid.uuid5(_RUN_KEY_NAMESPACE, f"{job.job_id}/{job.next_run_at.isoformat()}"))


def _fields(job_id: str, attempt: int, action: str, **more: Any) -> dict[str, Any]:
    return {"action": action, "job_id": job_id, "attempt": attempt, **more}


def handle(
    ctx: WorkerContext, event: JobEvent, worker: str, origin: Origin | None
) -> RetryLater | None:
    """Run one JobEvent. Database errors before the claim propagate: the task retries them."""
    job, db_now, claim = ctx.store.claim(event.job_id, event.attempt, worker, ctx.lease)
    if job is None:
        log.warning(
            "job %s does not exist; event rejected",
            event.job_id,
            extra=_fields(event.job_id, event.attempt, "job_missing"),
        )
        return None
    if claim is None:
        log.info(
            "stale or duplicate event for job %s (status %s, attempts %s); dropped",
            job.job_id,
            job.status,
            job.attempts,
            extra=_fields(job.job_id, event.attempt, "job_stale", status=job.status),
        )
        return None
    clock = _Clock(db_now)
    if claim.run_id is not None:
        return _Try(ctx, job, event, claim.run_id, clock, origin).run()
    if claim.lease_expires_at is None:
        log.info(
            "try %s of job %s already ran; duplicate dropped",
            event.attempt,
            job.job_id,
            extra=_fields(job.job_id, event.attempt, "job_duplicate"),
        )
        return None
    # A live lease: the try runs elsewhere, or its worker died. Look again once the lease
    # has run out; by then it either finished (and this is dropped) or can be taken over.
    wait = (claim.lease_expires_at - db_now).total_seconds() + 1
    log.info(
        "try %s of job %s is held by a live lease; checking again in %.0fs",
        event.attempt,
        job.job_id,
        wait,
        extra=_fields(job.job_id, event.attempt, "job_duplicate_deferred"),
    )
    return RetryLater(event.attempt, max(wait, 1.0))


class _Try:
    def __init__(
        self,
        ctx: WorkerContext,
        job: Job,
        event: JobEvent,
        run_id: int,
        clock: _Clock,
        origin: Origin | None,
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.event = event
        self.attempt = event.attempt
        self.run_id = run_id
        self.clock = clock
        self.origin = origin
        self.task = "unknown"  # metric label: a known executor's task, never free payload text

    def _fields(self, action: str, **more: Any) -> dict[str, Any]:
        return _fields(self.job.job_id, self.attempt, action, run=self.run_id, **more)

    def run(self) -> RetryLater | None:
        job = self.job
        if job.job_type == JobType.RECURRING:
            try:
                next_fire_time(job.cron_expression, self.clock.now())
            except InvalidCron as exc:
                self._fail(str(exc))
                return None
        payload = job.payload if isinstance(job.payload, dict) else None
        if payload is None:
            self._fail("payload is not a JSON object")
            return None
        run = JobRun(job.job_id, self.attempt, run_key(job), payload)
        executor = self.ctx.registry.find(run)
        if executor is None:
            self._fail(f"no executor supports task {run.task!r}")
            return None
        self.task = executor.task
        started = time.monotonic()
        with self.ctx.leases.hold(self.run_id):
            try:
                try:
                    executor.execute(run)
                finally:
                    metrics.RUN_SECONDS.labels(self.task).observe(time.monotonic() - started)
            except PermanentError as exc:
                self._fail(str(exc) or type(exc).__name__)
                return None
            except TransientError as exc:
                return self._transient(str(exc) or type(exc).__name__, exc.retry_after)
            except Exception as exc:  # an executor's bug: retried, as a transient error
                return self._transient(f"{type(exc).__name__}: {exc}")
        self._succeed(time.monotonic() - started)
        return None

    # --- outcomes ---------------------------------------------------------------------------

    def _succeed(self, seconds: float) -> None:
        self._finish(RunStatus.SUCCEEDED, outcomes.succeeded(self.job, self.clock.now()), None)
        metrics.OUTCOMES.labels(self.task, "success").inc()
        log.info(
            "job %s try %s succeeded in %.3fs",
            self.job.job_id,
            self.attempt,
            seconds,
            extra=self._fields(
                "job_success",
                outcome="success",
                duration=round(seconds, 6),
            ),
        )

    def _fail(self, reason: str) -> None:
        reason = reason[: outcomes.REASON_LIMIT]
        self._finish(RunStatus.FAILED, outcomes.failed(reason, self.clock.now()), reason)
        metrics.OUTCOMES.labels(self.task, "failed").inc()
        log.warning(
            "job %s failed: %s",
            self.job.job_id,
            reason,
            extra=self._fields("job_failed", outcome="failed", reason=reason),
        )

    def _transient(self, error: str, retry_after: float | None = None) -> RetryLater | None:
        error = error[: outcomes.REASON_LIMIT]
        if self.ctx.retry.exhausted(self.attempt):
            self._exhaust(error)
            return None
        self._finish(RunStatus.RETRYING, {"attempts": self.attempt + 1}, error)
        metrics.OUTCOMES.labels(self.task, "retry").inc()
        metrics.RETRIES.labels(self.task).inc()
        delay = self.ctx.retry.delay(self.attempt, retry_after)
        log.info(
            "job %s try %s failed transiently (%s); retry in %.2fs",
            self.job.job_id,
            self.attempt,
            error,
            delay,
            extra=self._fields("job_error_retry", outcome="retry", reason=error),
        )
        return RetryLater(self.attempt + 1, delay)

    def _exhaust(self, error: str) -> None:
        reason = outcomes.exhaustion_reason(self.attempt, error)
        values = outcomes.exhausted(self.job, reason, self.clock.now())
        self._finish(RunStatus.EXHAUSTED, values, reason)
        metrics.OUTCOMES.labels(self.task, "exhausted").inc()
        log.warning(
            "job %s: %s",
            self.job.job_id,
            reason,
            extra=self._fields("job_exhausted", outcome="exhausted", reason=reason),
        )
        self._dead_letter(reason)

    def _dead_letter(self, reason: str) -> None:
        writer = self.ctx.dead_letters
        if writer is None:
            return
        origin = self.origin or Origin(self.ctx.events_topic, -1, -1)
        letter = outcomes.exhausted_letter(
            self.event, reason, origin.topic, origin.partition, origin.offset
        )
        try:
            writer.send(letter)
            writer.flush(10)
            metrics.DEAD_LETTERED.labels("exhausted").inc()
        except DeadLetterError as exc:
            log.error(
                "could not dead-letter job %s: %s",
                self.job.job_id,
                exc,
                extra=self._fields("dead_letter_failed"),
            )

    def _finish(self, run_status: RunStatus, values: dict[str, Any], error: str | None) -> None:
        # The executor has run: keep trying to record that, through a database restart.
        delay = 0.2
        deadline = time.monotonic() + self.ctx.lease.total_seconds()
        while True:
            try:
                changed = self.ctx.store.finish(
                    self.job, self.attempt, self.run_id, self.clock.now(), run_status, values, error
                )
                break
            except SQLAlchemyError as exc:
                if time.monotonic() > deadline:
                    raise
                log.warning(
                    "recording the outcome of job %s failed (%s); retrying",
                    self.job.job_id,
                    type(exc).__name__,
                    extra=self._fields("outcome_write_retry"),
                )
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        if not changed:
            log.warning(
                "job %s changed while try %s ran; outcome kept in run history only",
                self.job.job_id,
                self.attempt,
                extra=self._fields("job_changed_meanwhile"),
            )
