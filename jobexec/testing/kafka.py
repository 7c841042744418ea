"""Kafka test clients: per-test topics, one record reader and one producer, on any broker.

`KafkaTopics` makes a fresh job-events topic and its dead-letter topic on a `TansuBroker`;
`read_records` reads a topic back from the beginning; `EventProducer` writes records (JobEvents
built by `jobexec.testing.events.job_event` or any bytes) and fails on any delivery error.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

from jobexec.testing.events import job_event
from jobexec.testing.tansu import TANSU_CONSUMER_SETTINGS, TansuBroker
from jobexec.testing.waiting import wait_until

# Test producers write records of a megabyte and more (librdkafka's default stops at 1,000,000
# bytes); Tansu itself takes records of any size, unlike Apache Kafka (1,048,588 by default).
TEST_PRODUCER_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

HeaderInput = Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]] | None


@dataclass(frozen=True)
class Record:
    """One Kafka record as read back: its value as on the wire (None for a tombstone)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp_ms: int = 0

    def json(self) -> Any:
        return json.loads(self.value if self.value is not None else b"null")


def read_records(bootstrap: str, topic: str, expected: int, timeout: float) -> list[Record]:
    """Read `topic` from the beginning until `expected` records arrived or `timeout` passed.

    Uses assign(), not a group subscription, so it starts at once. Returns what it read,
    which may be fewer than `expected` (the caller asserts) and is never more: to check
    that nothing else arrived, ask for one more than you expect with a short timeout.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign(
            [KafkaTopicPartition(topic, pid, OFFSET_BEGINNING) for pid in sorted(partitions)]
        )
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(min(1000, expected - len(records)), timeout=0.2):
                if msg.error():
                    raise AssertionError(f"reading {topic}: {msg.error()}")
                records.append(_record(msg))
        return records
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group_id: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offset of each partition (negative when none).

    The client never subscribes: it only asks the group coordinator, so it never joins the group.
    """
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False}
    )
    try:
        tps = consumer.committed(
            [KafkaTopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        return [tp.offset for tp in sorted(tps, key=lambda tp: tp.partition)]
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int, records: int) -> list[int]:
    """Each partition's end offset (last offset + 1), from reading its `records` records.

    Read, not asked for: Tansu's ListOffsets answers the base offset of the last batch + 1, so
    the high watermark is short by the size of that batch.
    """
    ends = [0] * partitions
    read = read_records(bootstrap, topic, expected=records, timeout=15)
    assert len(read) == records, f"{topic} holds {len(read)} records, not {records}"
    for record in read:
        ends[record.partition] = max(ends[record.partition], record.offset + 1)
    return ends


class EventProducer:
    """Produces records, many per flush; `flush` fails on any delivery error."""

    def __init__(self, bootstrap: str, linger_ms: int = 2) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": linger_ms,
                "message.max.bytes": TEST_PRODUCER_MAX_MESSAGE_BYTES,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        self._errors: list[str] = []

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err.str())

    def produce(
        self,
        topic: str,
        key: bytes | str | None,
        value: bytes | str | None,
        headers: HeaderInput = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue one record; a full local queue waits for librdkafka to send some."""
        items = headers.items() if isinstance(headers, Mapping) else headers or []
        extra: dict[str, Any] = {} if timestamp_ms is None else {"timestamp": timestamp_ms}
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=key.encode() if isinstance(key, str) else key,
                    value=value.encode() if isinstance(value, str) else value,
                    headers=list(items),
                    on_delivery=self._delivered,
                    **extra,
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)

    def produce_event(
        self,
        topic: str,
        job_id: str,
        attempt: int = 1,
        scheduled_at: float | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        """Queue a JobEvent as the scheduler publishes it: key = job id."""
        value = job_event(job_id, attempt, scheduled_at)
        self.produce(topic, job_id, value, timestamp_ms=timestamp_ms)

    def produce_events(self, topic: str, ids: Iterable[str], attempt: int = 1) -> None:
        for job_id in ids:
            self.produce_event(topic, job_id, attempt)

    def flush(self, timeout: float = 60.0) -> None:
        left = self._producer.flush(timeout)
        errors, self._errors = self._errors, []
        if left:
            raise AssertionError(f"{left} record(s) not delivered; errors: {errors[:3]}")
        if errors:
            raise AssertionError(f"delivery failed: {errors[:3]}")


class KafkaTopics:
    """A fresh job-events topic and its dead-letter topic on a broker, with test helpers."""

    def __init__(self, broker: TansuBroker, partitions: int = 3) -> None:
        self.broker = broker
        self.partitions = partitions
        self.topic = f"jobs-{uuid.uuid4().hex[:8]}"
        self.dlt = f"{self.topic}.DLT"
        self.group_id = f"bridge-{uuid.uuid4().hex[:8]}"
        self._producer: EventProducer | None = None

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def create(self, timeout: float = 15.0) -> None:
        admin = self.broker.admin()
        futures = admin.create_topics(
            [NewTopic(name, self.partitions, 1) for name in (self.topic, self.dlt)],
            operation_timeout=timeout,
        )
        for future in futures.values():
            future.result(timeout)
        for name in (self.topic, self.dlt):

            def ready(name: str = name) -> bool:
                return self._partition_count(name) == self.partitions

            wait_until(ready, timeout, message=f"topic {name} has not {self.partitions} partitions")

    def delete(self) -> None:
        """Best effort: the broker is in memory, so this only keeps it small."""
        if self._producer is not None:
            with contextlib.suppress(AssertionError):
                self._producer.flush(5)
            self._producer = None
        try:
            futures = self.broker.admin().delete_topics([self.topic, self.dlt], operation_timeout=5)
            for future in futures.values():
                future.result(5)
        except Exception:
            pass

    def properties(self) -> dict[str, str]:
        """The `configs.kafka.*` settings that point a jobexec process at these topics."""
        return {
            "configs.kafka.bootstrap-servers": self.bootstrap,
            "configs.kafka.topic.job-events": self.topic,
            "configs.kafka.topic.dead-letter": self.dlt,
            "configs.kafka.consumer.group-id": self.group_id,
            **TANSU_CONSUMER_SETTINGS,
        }

    def produce(
        self,
        key: bytes | str | None,
        value: bytes | str,
        headers: HeaderInput = None,
        topic: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Produce one record (to the job-events topic unless told) and wait for the ack."""
        self._get_producer().produce(topic or self.topic, key, value, headers)
        self._get_producer().flush(timeout)

    def produce_event(
        self,
        job_id: str,
        attempt: int = 1,
        scheduled_at: float | None = None,
        topic: str | None = None,
    ) -> None:
        """Produce a JobEvent as the scheduler does (`job_event`) and wait for the ack."""
        self.produce(job_id, job_event(job_id, attempt, scheduled_at), topic=topic)

    def consume_all(self, topic: str, expected: int, timeout: float = 10.0) -> list[Record]:
        """`read_records` of `topic`, a tombstone's value read as b"" so that values sort.

        Never more than `expected`: to check that nothing else arrived, ask for one more than
        you expect with a short timeout.
        """
        return [
            r if r.value is not None else replace(r, value=b"")
            for r in read_records(self.bootstrap, topic, expected, timeout)
        ]

    def _get_producer(self) -> EventProducer:
        if self._producer is None:
            self._producer = EventProducer(self.bootstrap, linger_ms=0)
        return self._producer

    def _partition_count(self, name: str) -> int:
        topics = self.broker.admin().list_topics(name, timeout=5).topics
        meta = topics.get(name)
        if meta is None or meta.error is not None:
            return -1
        return len(meta.partitions)


def _record(msg: Message) -> Record:
    raw_headers = msg.headers() or []
    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    return Record(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        key=msg.key(),
        value=msg.value(),
        headers={name: _header_bytes(raw) for name, raw in pairs},
        timestamp_ms=msg.timestamp()[1],
    )


def _header_bytes(raw: str | bytes | None) -> bytes:
    if raw is None:
        return b""
    return raw.encode() if isinstance(raw, str) else raw
