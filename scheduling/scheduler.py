"""`jobexec scheduler`: claim due jobs in one transaction, then publish one JobEvent each.

Several schedulers may run at once: the claim skips rows another one holds, and a claimed row
is RUNNING, so no run is dispatched twice.
"""

from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import KafkaError, Message, Producer
from sqlalchemy.exc import SQLAlchemyError

from jobexec.core import metrics, tracing
from jobexec.core.config import Settings
from jobexec.core.db.store import Dispatch, JobStore
from jobexec.core.events import JobEvent
from jobexec.core.health import Health
from jobexec.core.kafka import Connectivity
from jobexec.core.retention import PruneLoop
from jobexec.core.routes import TASK_HEADER
from jobexec.core.sections import KafkaSection, SchedulerSection, SweeperSection, TracingSection
from scheduling.sweeper import Sweeper

log = logging.getLogger("jobexec.scheduler")

# At stop, undelivered JobEvents get this long: the rest of the 10 s a stop may take is the claim in
# progress and the producer's close. Runs still unacknowledged stay RUNNING and are swept later.
STOP_FLUSH_S = 5.0


class Scheduler:
    def __init__(
        self,
        store: JobStore,
        producer: Producer,
        *,
        topic: str,
        scheduling: SchedulerSection,
        sweep_interval: float,
        sweeper: Sweeper | None = None,
        connection: Connectivity | None = None,
        dispatch_due: bool = True,
        pruner: PruneLoop | None = None,
    ) -> None:
        self.pruner = pruner  # history retention, on its own thread
        self.dispatch_due = dispatch_due  # False: only sweep, beside the existing scheduler
        self.store = store
        self.producer = producer
        self.sweeper = sweeper
        self.sweep_interval = sweep_interval  # seconds
        self._swept_at = 0.0
        self.topic = topic
        self.batch_size = scheduling.batch_size
        self.max_sleep = scheduling.max_sleep
        self.dispatched = 0
        self._db_down = False
        self.kafka = connection or Connectivity("scheduler")
        self._stop = threading.Event()
        self.health = Health()
        self.health.readiness = lambda: {
            "database": not self._db_down,
            "kafka": not self.kafka.down,
        }

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: JobStore,
        producer: Producer,
        sweeper: Sweeper | None = None,
        connection: Connectivity | None = None,
        dispatch_due: bool = True,
        pruner: PruneLoop | None = None,
    ) -> Scheduler:
        """The scheduler as `jobexec scheduler` runs it, exporting spans when tracing is on."""
        # a span per dispatched run, when export is on
        tracing.setup(TracingSection.from_settings(settings), "scheduler")
        return cls(
            store,
            producer,
            topic=KafkaSection.from_settings(settings).job_events_topic,
            scheduling=SchedulerSection.from_settings(settings),
            sweep_interval=SweeperSection.from_settings(settings).interval,
            sweeper=sweeper,
            connection=connection,
            dispatch_due=dispatch_due,
            pruner=pruner,
        )

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        log.info("scheduler publishing to %s", self.topic, extra={"action": "scheduler_started"})
        if self.pruner is not None:
            self.pruner.start()
        while not stop.is_set():
            self.health.beat()
            self.producer.poll(0)  # serves the producer's callbacks: errors, deliveries
            self.kafka.probe(lambda: self.producer.list_topics(self.topic, timeout=1))
            try:
                claimed = self.tick()
                # Also guarded: any statement may meet a killed connection.
                idle = self._idle_seconds() if claimed < self.batch_size else 0.0
            except SQLAlchemyError as exc:
                if not self._db_down:
                    log.error(
                        "job database unavailable: %s",
                        type(exc).__name__,
                        extra={"action": "database_unavailable"},
                    )
                self._db_down = True
                stop.wait(self.max_sleep)
                continue
            if self._db_down:
                log.info("job database reachable again", extra={"action": "database_up"})
                self._db_down = False
            if idle:
                stop.wait(idle)
        if self.pruner is not None:
            self.pruner.stop()
        self.producer.flush(STOP_FLUSH_S)
        tracing.shutdown()
        log.info(
            "scheduler stopped after dispatching %s runs",
            self.dispatched,
            extra={"action": "scheduler_stopped"},
        )

    def tick(self) -> int:
        """Claim one batch of due jobs (and abandoned runs) and publish their JobEvents."""
        claimed = self.store.claim_due(self.batch_size) if self.dispatch_due else []
        metrics.DISPATCHED.labels("schedule").inc(len(claimed))
        if self.sweeper is not None and time.monotonic() - self._swept_at >= self.sweep_interval:
            self._swept_at = time.monotonic()
            swept = self.sweeper.sweep()
            metrics.DISPATCHED.labels("sweeper").inc(len(swept))
            claimed += swept
        if claimed:
            self.publish(claimed)
        return len(claimed)

    def publish(self, dispatches: list[Dispatch]) -> None:
        for d in dispatches:
            event = JobEvent(d.job_id, d.attempt, d.scheduled_at)
            # The task rides along, so the bridge routes the run without a database read.
            headers: list[tuple[str, str | bytes | None]] = (
                [(TASK_HEADER, d.task.encode())] if d.task is not None else []
            )
            headers += tracing.dispatch_headers(d.job_id, d.attempt)  # [] with tracing off
            self.producer.produce(
                self.topic,
                key=d.job_id.encode(),
                value=event.to_json(),
                headers=headers or None,
                on_delivery=self._delivered,
            )
            self.producer.poll(0)
        # Wait for the acks in slices, so SIGTERM is heard while Kafka is unreachable; runs
        # whose JobEvent never arrives stay RUNNING and the sweeper dispatches them again.
        deadline = time.monotonic() + 30
        unacked = self.producer.flush(0.5)
        while unacked and time.monotonic() < deadline and not self._stop.is_set():
            unacked = self.producer.flush(0.5)
        self.dispatched += len(dispatches) - unacked
        log.info(
            "dispatched %s runs",
            len(dispatches),
            extra={"action": "jobs_dispatched", "count": len(dispatches)},
        )

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            key = msg.key()
            job_id = key.decode() if key else "?"
            log.error(
                "JobEvent for %s not delivered: %s",
                job_id,
                err.str(),
                extra={"action": "dispatch_failed", "job_id": job_id},
            )

    def _idle_seconds(self) -> float:
        if not self.dispatch_due:
            return self.max_sleep
        until = self.store.seconds_until_next_due()
        return self.max_sleep if until is None else min(self.max_sleep, max(until, 0.01))
