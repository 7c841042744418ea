"""The bridge loop: Kafka records in, Celery tasks out, offsets stored only behind the broker.

An offset is stored (and later committed by librdkafka's cadence, on revoke and on close) only
after the Celery broker accepted (on RabbitMQ: confirmed) the task of that record and of every
record before it in its partition. While the broker is unreachable, or the queues are deeper
than `configs.bridge.max-queue-depth`, the partitions are paused: polling goes on, so the group
membership is kept.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from bridge.broker import BROKER_ERRORS
from bridge.publisher import Enqueue, TaskPublisher
from bridge.routing import Router, TaskLookupError, task_header
from jobexec.core import metrics, tracing
from jobexec.core.celeryapp import create_app
from jobexec.core.config import Settings
from jobexec.core.deadletter import DeadLetter, DeadLetterError, DeadLetterWriter
from jobexec.core.events import JobEvent, Origin, PoisonRecord
from jobexec.core.health import Health
from jobexec.core.kafka import Connectivity, client_config, dead_letter_producer
from jobexec.core.routes import Routes
from jobexec.core.sections import BridgeSection, JobDbSection, KafkaSection

log = logging.getLogger("jobexec.bridge")

# What a failed hand-over to the Celery broker (any transport) or the dead-letter topic raises.
HANDOVER_ERRORS: tuple[type[BaseException], ...] = (
    *BROKER_ERRORS,
    DeadLetterError,
    TaskLookupError,  # routes: the job database could not name the tasks of a poll
)
_BACKPRESSURE_CHECK_S = 0.5
_MAX_RETRY_DELAY_S = 10.0


@dataclass(slots=True)
class _Record:
    """A consumed record and what the bridge will do with it."""

    origin: Origin
    action: Enqueue | DeadLetter
    done: bool = False  # handed over: enqueued or dead-lettered


@dataclass
class BridgeStats:
    consumed: int = 0
    enqueued: int = 0
    dead_lettered: int = 0
    paused: bool = False


def consumer_config(
    kafka: KafkaSection, section: BridgeSection, error_cb: Callable[[KafkaError], None]
) -> dict[str, Any]:
    return {
        **client_config(kafka.client_properties(), error_cb),
        "group.id": section.group_id,
        "auto.offset.reset": section.auto_offset_reset,
        "session.timeout.ms": section.session_timeout_ms,
        "max.poll.interval.ms": section.max_poll_interval_ms,
        "fetch.wait.max.ms": section.fetch_max_wait_ms,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": section.commit_interval_ms,
        # We store offsets ourselves, once the task is enqueued: the cadence commits only those.
        "enable.auto.offset.store": False,
        "client.id": f"jobexec-bridge-{socket.gethostname()}-{os.getpid()}",
        "on_commit": _on_commit,
    }


def _on_commit(err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
    metrics.COMMITS.labels("ok" if err is None else "error").inc()


class Bridge:
    def __init__(
        self,
        kafka: KafkaSection,
        section: BridgeSection,
        publisher: TaskPublisher,
        dead_letters: DeadLetterWriter,
    ) -> None:
        self.topic = kafka.job_events_topic
        self.batch_size = section.max_poll_records
        self.max_depth = section.max_queue_depth
        self.publisher = publisher
        self.dead_letters = dead_letters
        self.stats = BridgeStats()
        self.kafka = Connectivity("bridge")
        self.consumer = Consumer(consumer_config(kafka, section, self.kafka.error))
        # The sign-of-life request goes on a connection of its own: on the consumer's it waits
        # behind the outstanding fetch (up to fetch.wait.max.ms), and so does the loop.
        self.cluster = AdminClient(client_config(kafka.client_properties(), self.kafka.error))
        self._pending: list[_Record] = []
        self._outage = False
        self._backpressure = False
        for reason in metrics.PAUSE_REASONS:  # a series from the start: alerts see 0, not nothing
            metrics.PAUSED.labels(reason).set(0)
        self._retry_at = 0.0
        self._retry_delay = 0.5
        self._depth_checked_at = 0.0
        self._depth_estimate = 0  # last measured depth plus what we enqueued since
        self.health = Health()
        self.health.readiness = lambda: {
            "kafka": not self.kafka.down,
            "celery_broker": not self._outage,
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> Bridge:
        """The bridge as `jobexec bridge` runs it: its Celery publisher and dead-letter writer."""
        kafka = KafkaSection.from_settings(settings)
        section = BridgeSection.from_settings(settings)
        publisher = TaskPublisher(create_app(settings), _router(settings), section.max_poll_records)
        dead_letters = DeadLetterWriter(
            dead_letter_producer(kafka.client_properties(), kafka.job_events_topic),
            kafka.dead_letter_topic,
        )
        return cls(kafka, section, publisher, dead_letters)

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.consumer.subscribe(
            [self.topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        log.info("bridge consuming %s", self.topic, extra={"action": "bridge_started"})
        try:
            while not stop.is_set():
                self.health.beat()
                self.kafka.probe(self._measure_lag)
                self._check_backpressure()
                self._apply_pause()
                messages = self._consume()
                self._accept(messages)
                if self._pending and time.monotonic() >= self._retry_at:
                    self._hand_over()
        finally:
            self._shutdown()

    def _consume(self) -> list[Message]:
        """Wait for the first record only; then take what is already buffered, up to a batch.

        consume(n, timeout) would hold a lone record until n arrived or the timeout passed:
        half a second of latency at low load for nothing.
        """
        first = self.consumer.poll(0.5)
        if first is None:
            return []
        if self.batch_size == 1:
            return [first]
        return [first, *self.consumer.consume(self.batch_size - 1, timeout=0)]

    def _accept(self, messages: list[Message]) -> None:
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.kafka.error(error)
                continue
            self.kafka.reachable()
            self.stats.consumed += 1
            metrics.RECORDS_CONSUMED.inc()
            self._pending.append(_with_task(self._translate(message), message))

    def _translate(self, message: Message) -> _Record:
        # A record without an error always has its position.
        origin = Origin(str(message.topic()), message.partition() or 0, message.offset() or 0)
        action: Enqueue | DeadLetter
        try:
            action = Enqueue(JobEvent.parse(message.value()), origin)
        except Exception as exc:  # one record never stops the bridge: it is dead-lettered
            action = self._poison(message, origin, exc)
        return _Record(origin, action)

    def _poison(self, message: Message, origin: Origin, exc: Exception) -> DeadLetter:
        kind = type(exc)
        expected = isinstance(exc, PoisonRecord)
        log.log(
            logging.WARNING if expected else logging.ERROR,
            "poison record %s[%s]@%s: %s: %s",
            origin.topic,
            origin.partition,
            origin.offset,
            kind.__name__,
            exc,
            extra={
                "action": "record_poison",
                "partition": origin.partition,
                "offset": origin.offset,
            },
        )
        return DeadLetter(
            key=message.key(),
            value=message.value(),
            exception_fqcn="jobexec.events.PoisonRecord"
            if expected
            else f"{kind.__module__}.{kind.__qualname__}",
            message=str(exc) or kind.__name__,
            origin=origin,
        )

    def _hand_over(self) -> None:
        """Enqueue the pending records and dead-letter the poison ones; then store offsets.

        What went through is marked done and never sent again by a retry: after a failure
        part-way, only the rest is retried. Tasks go in batches of `max-poll-records`; the
        batch Redis failed on counts as not sent (kombu cannot tell how much of it went).
        """
        todo = [r for r in self._pending if not r.done]
        failure: BaseException | None = None
        try:
            self._enqueue([r for r in todo if isinstance(r.action, Enqueue)])
        except HANDOVER_ERRORS as exc:
            failure = exc
        self._dead_letter([r for r in todo if isinstance(r.action, DeadLetter)])
        self._pending = self._store_offsets(self._pending)
        if failure is None and self._pending:
            failed = sum(not r.done for r in self._pending)
            failure = DeadLetterError(
                f"{failed} records not acknowledged by {self.dead_letters.topic}"
            )
        if failure is not None:
            self._enter_outage(failure)
            return
        if self._outage:
            self._outage = False
            self._retry_delay = 0.5
            log.info("Celery broker reachable again; resuming", extra={"action": "broker_up"})

    def _enqueue(self, records: list[_Record]) -> None:
        for start in range(0, len(records), self.batch_size):
            batch = records[start : start + self.batch_size]
            self.publisher.publish([r.action for r in batch if isinstance(r.action, Enqueue)])
            for record in batch:
                record.done = True
            self.stats.enqueued += len(batch)
            metrics.TASKS_ENQUEUED.inc(len(batch))
            self._depth_estimate += len(batch)

    def _dead_letter(self, records: list[_Record]) -> None:
        if not records:
            return
        letters = [r.action for r in records if isinstance(r.action, DeadLetter)]
        written = self.dead_letters.deliver(letters, 10)
        for record, ok in zip(records, written, strict=True):
            record.done = ok
        self.stats.dead_lettered += sum(written)
        metrics.DEAD_LETTERED.labels("poison").inc(sum(written))

    def _enter_outage(self, exc: BaseException) -> None:
        if not self._outage:
            log.error(
                "cannot hand records over (%s: %s); pausing partitions, committing only "
                "what went through",
                type(exc).__name__,
                exc,
                extra={"action": "broker_down"},
            )
        self._outage = True
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, _MAX_RETRY_DELAY_S)

    def _store_offsets(self, records: list[_Record]) -> list[_Record]:
        """Store, per partition, the offset after the records handed over with all before them;
        returns the records from the first one not handed over on (their offsets wait)."""
        highest: dict[tuple[str, int], int] = {}
        blocked: set[tuple[str, int]] = set()
        waiting: list[_Record] = []
        for record in records:
            key = (record.origin.topic, record.origin.partition)
            if key in blocked or not record.done:
                blocked.add(key)
                waiting.append(record)
            else:
                highest[key] = max(highest.get(key, -1), record.origin.offset)
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]
        if offsets:
            try:
                self.consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:  # a partition revoked meanwhile: its new owner re-reads
                log.info("offsets not stored: %s", exc, extra={"action": "offset_store_skipped"})
        return waiting

    # --- pausing ----------------------------------------------------------------------------

    def _check_backpressure(self) -> None:
        now = time.monotonic()
        # Measure on a cadence, and at once when our own enqueues may have crossed the limit:
        # a fast loop hands over many batches between two cadence checks.
        due = now - self._depth_checked_at >= _BACKPRESSURE_CHECK_S
        if self._outage or not (due or self._depth_estimate > self.max_depth):
            return
        self._depth_checked_at = now
        try:
            depth = self.publisher.queue_depth()
        except HANDOVER_ERRORS:
            return  # the next hand-over will find the outage
        self._depth_estimate = depth
        if not self._backpressure and depth > self.max_depth:
            self._backpressure = True
            log.info(
                "queue depth %s > %s: pausing",
                depth,
                self.max_depth,
                extra={"action": "backpressure_on", "depth": depth},
            )
        elif self._backpressure and depth <= self.max_depth // 2:
            self._backpressure = False
            log.info(
                "queue depth %s: resuming",
                depth,
                extra={"action": "backpressure_off", "depth": depth},
            )

    def _apply_pause(self) -> None:
        want = self._outage or self._backpressure
        if want == self.stats.paused:
            return
        assignment = self.consumer.assignment()
        if want:
            self.consumer.pause(assignment)
        else:
            self.consumer.resume(assignment)
        self.stats.paused = want
        metrics.PAUSED.labels("broker_down").set(int(self._outage))
        metrics.PAUSED.labels("backpressure").set(int(self._backpressure))

    def _measure_lag(self) -> None:
        """One metadata request as a sign of life (on `cluster`: 0.3 ms, where behind the
        consumer's fetch it took 250 ms), and the lag of each partition.

        While records flow, a partition's end comes from the last fetch response (`cached`):
        asking the broker stopped this loop for a round trip per partition every few seconds
        (56 ms for 3 on Tansu, the latency tail). Paused partitions are not fetched, so then
        (nothing flows anyway) the broker is asked."""
        self.cluster.list_topics(self.topic, timeout=1)
        cached = not self.stats.paused
        for position in self.consumer.position(self.consumer.assignment()):
            _low, high = self.consumer.get_watermark_offsets(position, timeout=1, cached=cached)
            if high < 0:  # no fetch has answered for this partition yet
                continue
            consumed = position.offset if position.offset >= 0 else high
            metrics.CONSUMER_LAG.labels(position.topic, str(position.partition)).set(
                max(0, high - consumed)
            )

    # --- rebalances and shutdown ------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)
        if self.stats.paused:
            consumer.pause(partitions)
        log.info("assigned %s", _names(partitions), extra={"action": "partitions_assigned"})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(p.topic, p.partition) for p in partitions}
        # Records of revoked partitions were never committed: their new owner re-reads them.
        self._pending = [
            r for r in self._pending if (r.origin.topic, r.origin.partition) not in revoked
        ]
        self._commit()
        log.info("revoked %s", _names(partitions), extra={"action": "partitions_revoked"})

    def _commit(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("commit failed: %s", exc, extra={"action": "commit_failed"})

    def _shutdown(self) -> None:
        # Pending records were not enqueued: not committing them hands them back to Kafka.
        self._commit()
        self.consumer.close()
        self.publisher.close()
        log.info(
            "bridge stopped: %s consumed, %s enqueued, %s dead-lettered",
            self.stats.consumed,
            self.stats.enqueued,
            self.stats.dead_lettered,
            extra={"action": "bridge_stopped"},
        )


def _router(settings: Settings) -> Router:
    """Routes from the settings; the job table names the tasks of events without the header."""
    routes = Routes.from_settings(settings)
    if not routes.by_task or not JobDbSection.from_settings(settings).url:
        return Router(routes, lookup=None)
    from jobexec.core.db.engine import database_url, make_engine
    from jobexec.core.db.store import JobStore

    return Router(routes, JobStore(make_engine(database_url(settings))).tasks_of)


def _with_task(record: _Record, message: Message) -> _Record:
    if isinstance(record.action, Enqueue):
        record.action = replace(
            record.action,
            task=task_header(message),
            trace=tracing.record_headers(message.headers()),
        )
    return record


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"
