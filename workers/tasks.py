"""The `jobexec.execute_job` Celery task: a thin shell around `workers.lifecycle.handle`."""

from __future__ import annotations

import logging
import os
import reprlib
import socket
import sys
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from executors import DuplicateExecutorError, ExecutorLoadError, load_registry
from jobexec.core import tracing
from jobexec.core.config import ConfigError, Settings
from jobexec.core.db.engine import database_url, make_engine
from jobexec.core.db.store import JobStore
from jobexec.core.deadletter import DeadLetterWriter
from jobexec.core.events import JobEvent, Origin, PoisonRecord
from jobexec.core.kafka import reliable_producer
from jobexec.core.retention import prune_step
from jobexec.core.sections import ExecutorsSection, KafkaSection, LeaseSection, TracingSection
from jobexec.core.taskmessage import TASK_NAME, TaskMessage
from workers.concurrency import caps_from_settings
from workers.events import EventsWithoutConfirms
from workers.lease import LeaseKeeper
from workers.lifecycle import HandBack, Publish, RetryLater, WorkerContext, handle
from workers.limits import TimeLimits
from workers.pools import listen_for_hand_back, stopping
from workers.rescue import rescue_step
from workers.retry import RetryPolicy

log = logging.getLogger("jobexec.worker")

_contexts: dict[int, WorkerContext] = {}
# Set in prefork pool children only: there a try that will not stop can end its process.
_in_pool_child = False


@worker_process_init.connect  # type: ignore[untyped-decorator]
def _mark_pool_child(**_kwargs: Any) -> None:
    global _in_pool_child
    _in_pool_child = True
    listen_for_hand_back()


def build_context(settings: Settings) -> WorkerContext:
    kafka = KafkaSection.from_settings(settings)
    dead_letters = (
        DeadLetterWriter(reliable_producer(kafka.client_properties()), kafka.dead_letter_topic)
        if kafka.bootstrap_servers
        else None
    )
    # No pre-ping: a dead connection fails the statement, the task retries, and SQLAlchemy
    # replaces the whole pool on that disconnect; a ping per checkout cost 12% (profiled).
    store = JobStore(make_engine(database_url(settings), pre_ping=False))
    lease = LeaseSection.from_settings(settings)
    registry = load_registry(settings)
    return WorkerContext(
        store=store,
        registry=registry,
        retry=RetryPolicy.from_settings(settings),
        lease=lease.duration,
        leases=LeaseKeeper(store, lease.duration, lease.heartbeat),
        dead_letters=dead_letters,
        events_topic=kafka.job_events_topic,
        limits=TimeLimits.from_settings(settings, registry.tasks),
        caps=caps_from_settings(settings, registry.tasks),
        stop_grace=ExecutorsSection.from_settings(settings).cancel_grace,
        can_end_process=_in_pool_child,
    )


def check_registry(settings: Settings) -> None:
    """Load every executor once, or exit 2 with one line saying which plugin (or which of
    their time limits) is wrong."""
    try:
        registry = load_registry(settings)
    except (DuplicateExecutorError, ExecutorLoadError) as exc:
        print(f"jobexec: executor registry: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    log.info("executors: %s", ", ".join(registry.tasks), extra={"action": "executors_checked"})
    registry.close()
    try:
        TimeLimits.from_settings(settings, registry.tasks)
        caps_from_settings(settings, registry.tasks)
    except ConfigError as exc:
        print(f"jobexec: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not KafkaSection.from_settings(settings).bootstrap_servers:
        log.warning(
            "configs.kafka.bootstrap-servers is not set: exhausted runs will not be dead-lettered",
            extra={"action": "dead_letters_disabled"},
        )


@worker_process_shutdown.connect  # type: ignore[untyped-decorator]
def _close_executors(**_kwargs: Any) -> None:
    ctx = _contexts.pop(os.getpid(), None)
    tracing.shutdown()  # the spans still batched, before the pool child exits
    if ctx is not None:
        ctx.registry.close()
        ctx.store.engine.dispose()


def running_context() -> WorkerContext | None:
    """This process's context, if it has run a try."""
    return _contexts.get(os.getpid())


def context(settings: Settings) -> WorkerContext:
    """One context per process: prefork children must not share the parent's connections."""
    pid = os.getpid()
    if pid not in _contexts:
        _contexts.clear()
        _contexts[pid] = build_context(settings)
    return _contexts[pid]


def register(app: Celery, settings: Settings) -> None:
    try:
        # a span per try, when export is on
        tracing.setup(TracingSection.from_settings(settings), "worker")
    except ConfigError as exc:
        print(f"jobexec: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app.steps["worker"].add(rescue_step(settings))  # tries of dead workers are taken over
    app.steps["worker"].add(prune_step(settings))  # history retention, also with no scheduler
    app.steps["consumer"].add(EventsWithoutConfirms)  # Flower's events wait for no confirm

    @app.task(name=TASK_NAME, bind=True)  # type: ignore[untyped-decorator]
    def execute_job(
        self: Task,
        job_id: Any,
        attempt: Any = 1,
        scheduled_at: Any = None,
        origin: Any = None,
    ) -> None:
        try:
            message = TaskMessage.decode(job_id, attempt, scheduled_at, origin)
        except PoisonRecord as exc:
            # A crafted job_id may be megabytes long: log a bounded prefix of it.
            shown = reprlib.repr(job_id)
            log.error(
                "malformed task for job %s dropped: %s",
                shown,
                exc,
                extra={"action": "task_malformed", "job_id": shown},
            )
            return
        event = message.event
        if stopping():
            raise Reject("the worker is stopping: task handed back unrun", requeue=True)
        ctx = context(settings)
        worker = f"{self.request.hostname or socket.gethostname()}/{os.getpid()}"
        request = self.request

        def publish(later: RetryLater) -> None:
            # From the watchdog's thread, while this task may hang: what self.retry would send.
            self.signature_from_request(
                request,
                (),
                message.next_try(later.attempt).kwargs(),
                countdown=later.delay,
                retries=request.retries + 1,
            ).apply_async()

        try:
            retry = _traced_handle(ctx, event, worker, message.origin, publish, request)
        except (DataError, IntegrityError) as exc:
            # The database refuses these kwargs (out of range, too long): a retry cannot pass.
            reason = f"{type(exc).__name__}: {str(exc.orig).partition(chr(10))[0]}"
            log.error(
                "task for job %r rejected by the job database, not retried (%s)",
                event.job_id,
                reason,
                extra={
                    "action": "task_rejected",
                    "job_id": event.job_id,
                    "attempt": event.attempt,
                    "reason": reason,
                },
            )
            return
        except SQLAlchemyError as exc:
            # The database is unreachable: nothing ran, so try the same attempt again later.
            delay = ctx.retry.backoff(min(self.request.retries + 1, 30))
            log.warning(
                "job database unavailable for job %s (%s); retry in %.1fs",
                event.job_id,
                type(exc).__name__,
                delay,
                extra={
                    "action": "database_unavailable",
                    "job_id": event.job_id,
                    "attempt": event.attempt,
                },
            )
            raise self.retry(countdown=delay, max_retries=None) from None
        if isinstance(retry, HandBack):
            raise Reject("the worker is stopping: try handed back", requeue=True)
        if retry is not None:
            raise self.retry(
                kwargs=message.next_try(retry.attempt).kwargs(),
                countdown=retry.delay,
                max_retries=None,
            )


def _traced_handle(
    ctx: WorkerContext,
    event: JobEvent,
    worker: str,
    origin: Origin | None,
    publish: Publish,
    request: Any,
) -> RetryLater | HandBack | None:
    """`handle` inside the try's span, the child of the task's trace headers."""
    trace = tracing.start_try(event.job_id, event.attempt, request)
    error: BaseException | None = None
    try:
        return handle(ctx, event, worker, origin, publish)
    except BaseException as exc:
        error = exc
        raise
    finally:
        tracing.end_try(trace, error)
