"""The rescuer: workers take over the tries of workers that died, with no scheduler running.

A try whose lease expired unfinished has lost its worker (kill -9, a lost machine): nothing
renews the lease but a live worker. Every `configs.lease.rescue-interval-ms`, one thread in
each worker's main process (whatever the pool) looks for such tries. With tries left, the dead
try is recorded LOST, the job moves to the next attempt and that attempt is published as a
`jobexec.execute_job` task, like the bridge's; with none left, the run is settled as exhausted
and dead-lettered, by the sweeper's own code. The dead worker's task message, redelivered
after Redis's visibility timeout, then meets a job at a later attempt and is dropped as stale.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from celery import Celery, bootsteps

from jobexec.core import taskmessage
from jobexec.core.config import Settings, mask_url_password
from jobexec.core.db.engine import database_url, make_engine
from jobexec.core.db.store import Dispatch, JobStore
from jobexec.core.deadletter import DeadLetterWriter
from jobexec.core.events import JobEvent, Origin
from jobexec.core.exhaustion import settle_exhausted
from jobexec.core.kafka import reliable_producer
from jobexec.core.routes import Routes
from jobexec.core.sections import KafkaSection, LeaseSection, RetrySection, SchedulerSection
from jobexec.core.taskmessage import TaskMessage

log = logging.getLogger("jobexec.rescue")

LOST_CAUSE = "the try was lost (its worker stopped renewing the lease)"


class Rescuer:
    """Finds tries whose lease expired unfinished and takes them over, one pass at a time."""

    def __init__(
        self,
        store: JobStore,
        publish: Callable[[Sequence[Dispatch]], None],
        dead_letters: Callable[[], DeadLetterWriter | None],
        *,
        topic: str,
        max_attempts: int,
        batch_size: int,
        interval: float,
        lease: timedelta = timedelta(minutes=1),
    ) -> None:
        self.store = store
        self.publish = publish
        self.dead_letters = dead_letters
        self.topic = topic
        self.max_attempts = max_attempts
        self.batch_size = batch_size
        self.interval = interval
        self.lease = lease
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, app: Celery) -> Rescuer:
        """A rescuer with its own small engine, publishing on the app's broker connection."""
        store = JobStore(make_engine(database_url(settings)))
        # A prefork child forked later must not close the parent's connections as its own.
        os.register_at_fork(after_in_child=lambda: store.engine.dispose(close=False))
        writer: list[DeadLetterWriter] = []
        kafka = KafkaSection.from_settings(settings)

        def dead_letters() -> DeadLetterWriter | None:
            # Made on first use: most workers never settle a lost run, and need no producer.
            if not writer and kafka.bootstrap_servers:
                producer = reliable_producer(kafka.client_properties())
                writer.append(DeadLetterWriter(producer, kafka.dead_letter_topic))
            return writer[0] if writer else None

        lease = LeaseSection.from_settings(settings)
        return cls(
            store,
            task_publisher(app, Routes.from_settings(settings), kafka.job_events_topic),
            dead_letters,
            topic=kafka.job_events_topic,
            max_attempts=RetrySection.from_settings(settings).max_attempts,
            batch_size=SchedulerSection.from_settings(settings).batch_size,
            interval=lease.rescue_interval,
            lease=lease.duration,
        )

    def rescue(self) -> int:
        """One pass: take over every lost try found (up to a batch); returns how many."""
        redelivered = self._redeliver()
        lost = self.store.lost_tries(self.batch_size)
        if not lost:
            return redelivered
        taken: list[Dispatch] = []
        if any(job.attempts < self.max_attempts for job in lost):
            # Published inside the transaction: a failed publish rolls the rescue back.
            with self.store.rescue(self.max_attempts, self.batch_size) as taken:
                self.publish(taken)
        for d in taken:
            log.warning(
                "job %s lost try %s with its worker; dispatching try %s",
                d.job_id,
                d.attempt - 1,
                d.attempt,
                extra={"action": "job_rescued", "job_id": d.job_id, "attempt": d.attempt},
            )
        settled = sum(
            settle_exhausted(
                self.store, job, LOST_CAUSE, self.dead_letters(), self.topic, lost_try=True
            )
            for job in lost
            if job.attempts >= self.max_attempts
        )
        return redelivered + len(taken) + settled

    def _redeliver(self) -> int:
        """Publish again, at the same attempt, handed-back tries nobody took over."""
        with self.store.redeliver(self.lease, self.batch_size) as again:
            self.publish(again)
        for d in again:
            log.warning(
                "job %s try %s was handed back and not taken over; publishing it again",
                d.job_id,
                d.attempt,
                extra={"action": "job_redelivered", "job_id": d.job_id, "attempt": d.attempt},
            )
        return len(again)

    # --- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rescuer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)  # within the worker's 10 s stop; a pass cut short rolls back

    def _run(self) -> None:
        log.info(
            "taking over tries whose lease expired, every %gs",
            self.interval,
            extra={"action": "rescuer_started"},
        )
        failing = False
        while not self._stop.is_set():
            try:
                self.rescue()
            except Exception as exc:  # the database or the broker is away: try next time
                if not failing:  # once per outage, not once per pass
                    log.warning(
                        "rescue of lost tries failed, retrying every %gs: %s: %s",
                        self.interval,
                        type(exc).__name__,
                        mask_url_password((str(exc).splitlines() or [""])[0]),
                        extra={"action": "rescue_failed"},
                    )
                failing = True
            else:
                if failing:
                    log.info("rescue of lost tries works again", extra={"action": "rescue_ok"})
                failing = False
            self._stop.wait(self.interval)
        self.store.engine.dispose()


def task_publisher(app: Celery, routes: Routes, topic: str) -> Callable[[Sequence[Dispatch]], None]:
    """Publish next tries as the bridge publishes JobEvents' tasks, each to its task's queue
    (no Kafka origin: -1)."""

    def publish(dispatches: Sequence[Dispatch]) -> None:
        if not dispatches:
            return
        with app.producer_or_acquire() as producer:
            for d in dispatches:
                event = JobEvent(d.job_id, d.attempt, d.scheduled_at)
                taskmessage.send(
                    app,
                    TaskMessage(event, Origin(topic, -1, -1)),
                    queue=routes.queue_for(d.task),
                    producer=producer,
                )

    return publish


def rescue_step(settings: Settings) -> type[Any]:
    """The worker bootstep that runs a Rescuer in the worker's main process, in every pool:
    one per worker, not one per pool child. Off when `configs.lease.rescue-interval-ms` is 0."""

    class RescueStep(bootsteps.StartStopStep):  # type: ignore[misc]
        # After the pool: prefork children are forked before the rescuer has connections.
        requires = ("celery.worker.components:Pool",)

        def include_if(self, worker: Any) -> bool:
            return bool(LeaseSection.from_settings(settings).rescue_interval)

        def create(self, worker: Any) -> Rescuer:
            return Rescuer.from_settings(settings, worker.app)

    return RescueStep
