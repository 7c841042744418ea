"""One try of a job's run: validate the JobEvent, claim the try, execute, write the outcome.

The executor runs outside any transaction or row lock; the claim and the outcome are one short
transaction each. Only this module writes job and run states.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from executors import JobRun, PermanentError, Registry, Stopped, TransientError
from jobexec.core import metrics, outcomes, tracing
from jobexec.core.cron import InvalidCron, next_fire_time
from jobexec.core.db.states import JobType, RunStatus
from jobexec.core.db.store import Job, JobStore
from jobexec.core.deadletter import DeadLetterError, DeadLetterWriter
from jobexec.core.events import JobEvent, Origin
from workers.concurrency import defer_delay
from workers.lease import HeldRun, LeaseKeeper
from workers.limits import TimeLimits, limit_reason
from workers.retry import RetryPolicy

log = logging.getLogger("jobexec.worker")

_RUN_KEY_NAMESPACE = uuid.UUID("6f1c9a52-8a55-4f57-9d84-2f7a1b0c3e11")


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
    limits: TimeLimits = field(default_factory=TimeLimits)
    # Concurrency caps by task (`configs.executors.<task>.concurrency`); uncapped tasks absent.
    caps: Mapping[str, int] = field(default_factory=dict)
    # How long a try told to stop may take to return before it is ended or abandoned.
    stop_grace: float = 10.0
    # True in a prefork child: a try that does not stop is ended with its process.
    can_end_process: bool = False


# Publishes the next try of a run; the watchdog's way when the task itself is hung.
Publish = Callable[["RetryLater"], None]

# Tries of this process inside their executor right now, by run id: what a stopping worker
# still waits for (threads of an abandoned try among them).
_executing: set[int] = set()


def executing() -> int:
    """How many tries of this process are inside their executor now."""
    return len(_executing)


@dataclass(frozen=True, slots=True)
class RetryLater:
    """The try failed transiently and the next one is recorded: publish it after `delay`."""

    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class HandBack:
    """The worker stops and the try stopped unfinished: requeue its message, as a lost
    worker's; its lease is released, so the next delivery takes the try over at once."""


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
    ctx: WorkerContext,
    event: JobEvent,
    worker: str,
    origin: Origin | None,
    publish: Publish | None = None,
) -> RetryLater | HandBack | None:
    """Run one JobEvent. Database errors before the claim propagate: the task retries them.

    A RetryLater returned is for the caller to publish; a try stopped by its time limit while
    its executor hangs is published through `publish` instead, by the watchdog.
    """
    job, db_now, claim = ctx.store.claim(event.job_id, event.attempt, worker, ctx.lease, ctx.caps)
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
        return _Try(ctx, job, event, claim.run_id, clock, origin, publish).run()
    if claim.capped_task is not None:
        return _defer_over_cap(ctx, job, event, claim.capped_task)
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


def _defer_over_cap(ctx: WorkerContext, job: Job, event: JobEvent, task: str) -> RetryLater:
    """The task's cap is reached: the same try is delivered again shortly, no attempt spent."""
    delay = defer_delay()
    ctx.store.touch_waiting(job.job_id, event.attempt)
    metrics.DEFERRED.labels(task, "concurrency").inc()
    log.info(
        "try %s of job %s deferred: %s of task %s run already; checking again in %.1fs",
        event.attempt,
        job.job_id,
        ctx.caps[task],
        task,
        delay,
        extra=_fields(job.job_id, event.attempt, "job_deferred_concurrency", task=task),
    )
    return RetryLater(event.attempt, delay)


def _current_greenlet() -> Any | None:
    """The gevent greenlet running this try (`--pool gevent`), else None."""
    if "gevent.monkey" not in sys.modules:
        return None
    import gevent
    from gevent import monkey

    if not monkey.is_module_patched("threading"):
        return None
    current = gevent.getcurrent()
    return current if isinstance(current, gevent.Greenlet) else None


# An executor that fails this close to its deadline ran out of time: it bounded its own work
# by run.remaining() and ended a moment before the watchdog's tick.
_DEADLINE_SLACK_S = 0.1


def _out_of_time(run: JobRun) -> bool:
    left = run.remaining()
    return left is not None and left <= _DEADLINE_SLACK_S


class _Try:
    def __init__(
        self,
        ctx: WorkerContext,
        job: Job,
        event: JobEvent,
        run_id: int,
        clock: _Clock,
        origin: Origin | None,
        publish: Publish | None = None,
    ) -> None:
        self.ctx = ctx
        self.job = job
        self.event = event
        self.attempt = event.attempt
        self.run_id = run_id
        self.clock = clock
        self.origin = origin
        self.task = "unknown"  # metric label: a known executor's task, never free payload text
        self.publish = publish
        self.limit = 0.0
        # Why the try was told to stop: "limit" or "cancel"; None while it may go on.
        self.stop_reason: str | None = None
        self.returned = threading.Event()  # the executor came back, one way or another
        self.greenlet = _current_greenlet()
        # One outcome per try: the executing thread's or the watchdog's, whichever is first.
        self._outcome_lock = threading.Lock()
        self._outcome_taken = False
        # The try's trace, taken on its own thread: the watchdog notes outcomes on it too.
        self.trace = tracing.current_try()

    def _fields(self, action: str, **more: Any) -> dict[str, Any]:
        if "outcome" in more:  # every outcome is logged through here: the try's span notes it
            tracing.try_outcome(more["outcome"], self.task, self.trace)
        return _fields(self.job.job_id, self.attempt, action, run=self.run_id, **more)

    def run(self) -> RetryLater | HandBack | None:
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
        try:
            self.limit = self.ctx.limits.for_run(executor.task, payload)
        except PermanentError as exc:
            self._fail(str(exc))
            return None
        started = time.monotonic()
        run = replace(run, deadline=started + self.limit)
        held = HeldRun(self.run_id, run.deadline, stop=lambda reason: self._stop(run, reason))
        with self.ctx.leases.hold(held):
            try:
                _executing.add(self.run_id)
                try:
                    executor.execute(run)
                finally:
                    _executing.discard(self.run_id)
                    self.returned.set()
                    metrics.RUN_SECONDS.labels(self.task).observe(time.monotonic() - started)
            except Exception as exc:
                if self.stop_reason is None and _out_of_time(run):
                    # The executor gave up as its time ran out (http bounds its call by
                    # run.remaining()): the try ran to its limit, and says so.
                    self.stop_reason = "limit"
                    tracing.try_stopped(self.trace, "limit", limit_reason(self.limit))
                if self.stop_reason == "shutdown" and isinstance(exc, Stopped):
                    return self._hand_back()
                if self.stop_reason in ("limit", "cancel"):  # told to stop: the outcome
                    return self._stopped()
                if isinstance(exc, PermanentError):
                    self._fail(str(exc) or type(exc).__name__)
                    return None
                if isinstance(exc, TransientError):
                    return self._transient(str(exc) or type(exc).__name__, exc.retry_after)
                # an executor's bug (or a Stopped nobody asked for): retried, as transient
                return self._transient(f"{type(exc).__name__}: {exc}")
        if self.stop_reason in ("limit", "cancel"):
            return self._stopped()
        self._succeed(time.monotonic() - started)  # also when it finished as the worker stopped
        return None

    # --- stopping ---------------------------------------------------------------------------

    def _stop(self, run: JobRun, reason: str) -> None:
        """The watchdog's side: tell the executor to stop, record the outcome at once, then
        give the executor the grace to return; end the process or abandon the try if not.

        A worker shutting down ("shutdown") only tells the executor: the try hands itself
        back when it returns (see `_stopped`).
        """
        self.stop_reason = reason
        run.stop.set()
        if reason == "shutdown":
            log.info(
                "job %s try %s told to stop: the worker is stopping",
                self.job.job_id,
                self.attempt,
                extra=self._fields("job_stop_requested", reason=reason),
            )
            return
        why = limit_reason(self.limit) if reason == "limit" else "job cancelled"
        tracing.try_stopped(self.trace, reason, why)
        log.info(
            "job %s try %s told to stop (%s)",
            self.job.job_id,
            self.attempt,
            why,
            extra=self._fields("job_stop_requested", reason=reason),
        )
        try:
            later = self._stopped()
        except SQLAlchemyError as exc:
            # Not recorded: the lease is no longer renewed, so a rescuer takes the try over
            # once it expires; the executor is still ended or abandoned below.
            log.error(
                "job %s try %s: its outcome could not be recorded (%s)",
                self.job.job_id,
                self.attempt,
                type(exc).__name__,
                extra=self._fields("stop_outcome_unrecorded", reason=reason),
            )
            later = None
        if isinstance(later, RetryLater):
            if self.publish is None:
                log.error(
                    "job %s: no way to publish try %s; the sweeper will re-dispatch it",
                    self.job.job_id,
                    later.attempt,
                    extra=self._fields("next_try_unpublished"),
                )
            else:
                self.publish(later)
        if self.returned.wait(self.ctx.stop_grace):
            return
        if self.ctx.can_end_process:
            log.warning(
                "job %s try %s did not stop within %.1fs; ending worker process %s",
                self.job.job_id,
                self.attempt,
                self.ctx.stop_grace,
                os.getpid(),
                extra=self._fields("worker_process_ended", reason=reason),
            )
            for handler in logging.getLogger().handlers:
                handler.flush()
            tracing.abandon_try(self.trace, flush=True)  # the span, before its process ends
            # The pool starts a new child; the message, requeued as the worker was lost, comes
            # back as a stale duplicate and is dropped by the attempt check.
            os._exit(70)
        if self.greenlet is not None:
            log.warning(
                "job %s try %s did not stop within %.1fs; ending its greenlet",
                self.job.job_id,
                self.attempt,
                self.ctx.stop_grace,
                extra=self._fields("job_greenlet_ended", reason=reason),
            )
            # GreenletExit at its next yield frees the pool slot; Celery's gevent pool treats a
            # killed greenlet's task as done and acknowledges it (its outcome is recorded).
            self.greenlet.kill(block=False)
            return
        log.warning(
            "job %s try %s did not stop within %.1fs; abandoned (its outcome is recorded, "
            "a late one changes nothing)",
            self.job.job_id,
            self.attempt,
            self.ctx.stop_grace,
            extra=self._fields("job_try_abandoned", reason=reason),
        )
        tracing.abandon_try(self.trace)

    def _stopped(self) -> RetryLater | None:
        """The outcome of a try told to stop: CANCELLED, or a transient time-limit failure.
        (One stopped by its worker's shutdown hands itself back instead: `_hand_back`.)"""
        if self.stop_reason == "cancel":
            self._cancelled()
            return None
        return self._transient(limit_reason(self.limit))

    def _hand_back(self) -> HandBack | None:
        if not self._take_outcome():
            return None
        self.ctx.store.hand_back(self.run_id, self.ctx.lease)
        log.info(
            "job %s try %s handed back unfinished",
            self.job.job_id,
            self.attempt,
            extra=self._fields("job_handed_back"),
        )
        return HandBack()

    # --- outcomes ---------------------------------------------------------------------------

    def _take_outcome(self) -> bool:
        """True for the first caller only: a try has one outcome, the late one is dropped."""
        with self._outcome_lock:
            if self._outcome_taken:
                log.info(
                    "job %s try %s already has its outcome; a second one is ignored",
                    self.job.job_id,
                    self.attempt,
                    extra=self._fields("late_outcome_ignored"),
                )
                return False
            self._outcome_taken = True
            return True

    def _succeed(self, seconds: float) -> None:
        if not self._take_outcome():
            return
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
        if not self._take_outcome():
            return
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
        if not self._take_outcome():
            return None
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

    def _cancelled(self) -> None:
        if not self._take_outcome():
            return
        # The job row is CANCELLED already: only the run history changes (finish's guard).
        self._finish(RunStatus.CANCELLED, {}, "job cancelled", quiet=True)
        metrics.OUTCOMES.labels(self.task, "cancelled").inc()
        log.info(
            "job %s try %s cancelled",
            self.job.job_id,
            self.attempt,
            extra=self._fields("job_cancelled", outcome="cancelled"),
        )

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
        letter = outcomes.exhausted_letter(self.event, reason, origin)
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

    def _finish(
        self, run_status: RunStatus, values: dict[str, Any], error: str | None, quiet: bool = False
    ) -> None:
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
        if not changed and not quiet:
            log.warning(
                "job %s changed while try %s ran; outcome kept in run history only",
                self.job.job_id,
                self.attempt,
                extra=self._fields("job_changed_meanwhile"),
            )
