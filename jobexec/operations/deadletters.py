"""Read the dead-letter topic: its records, where each sits and what it holds.

Reading uses assign(), never a group join, so it starts at once and moves no committed offset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from jobexec.core.config import Settings
from jobexec.core.events import Origin
from jobexec.operations.errors import InvalidInput, OperationError

KAFKA_TIMEOUT_S = 15.0
# librdkafka would print every failed connection attempt; the operation reports the outcome once.
QUIET = {"log_level": "0"}


@dataclass(frozen=True, slots=True)
class DltRecord:
    """One record of the dead-letter topic: where it sits, and what it holds."""

    origin: Origin
    timestamp: datetime | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    @property
    def position(self) -> str:
        """PARTITION:OFFSET, as `jobexec dlq list` shows it and `dlq replay --offset` takes it."""
        return f"{self.origin.partition}:{self.origin.offset}"

    def header(self, name: str) -> str | None:
        for key, raw in self.headers:
            if key == name:
                return text(raw)
        return None


# --- reading the topic ----------------------------------------------------------------------


class DltReader:
    """Reads a topic by assign(): no group join, no committed offset moved. A context manager:
    leaving it closes the consumer."""

    def __init__(self, settings: Settings) -> None:
        self.consumer = Consumer(
            {
                **settings.kafka_client_properties,
                **QUIET,
                "group.id": f"jobexec-dlq-{uuid.uuid4().hex[:8]}",  # never joined: assign() only
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": False,
                "auto.offset.reset": "earliest",
            }
        )

    def __enter__(self) -> DltReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.consumer.close()

    def partitions(self, topic: str) -> list[int]:
        meta = self.consumer.list_topics(topic, timeout=KAFKA_TIMEOUT_S).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise OperationError(f"dead-letter topic {topic} does not exist")
        return sorted(meta.partitions)

    def read_all(self, topic: str, limit: int | None) -> tuple[list[DltRecord], bool]:
        """Records in partition and offset order, up to `limit`; and whether more exist."""
        records: list[DltRecord] = []
        more = False
        for partition in self.partitions(topic):
            low, high = self._watermarks(topic, partition)
            if high <= low:
                continue
            room = None if limit is None else limit - len(records)
            if room is not None and room <= 0:
                more = True
                break
            end = high if room is None else min(high, low + room)
            more = more or end < high
            records.extend(self._read(topic, partition, low, end))
        return records, more

    def read_positions(
        self, topic: str, wanted: Iterable[tuple[int | None, int]]
    ) -> list[DltRecord]:
        """The chosen records, (partition, offset) with the partition optional on a topic of
        one partition; OperationError naming the first that does not exist."""
        partitions = self.partitions(topic)
        positions: list[tuple[int, int]] = []
        for partition, offset in wanted:
            if partition is None:
                if len(partitions) != 1:
                    raise InvalidInput(
                        f"dead-letter topic {topic} has {len(partitions)} partitions: give "
                        "--offset PARTITION:OFFSET, as `jobexec dlq list` shows"
                    )
                partition = partitions[0]
            if (partition, offset) not in positions:
                positions.append((partition, offset))
        records: list[DltRecord] = []
        for partition, offset in sorted(positions):
            low, high = self._watermarks(topic, partition) if partition in partitions else (0, 0)
            if not low <= offset < high:
                raise OperationError(f"no record {partition}:{offset} on {topic}")
            records.extend(self._read(topic, partition, offset, offset + 1))
        return records

    def _watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        low, high = self.consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=KAFKA_TIMEOUT_S, cached=False
        )
        return int(low), int(high)

    def _read(self, topic: str, partition: int, start: int, end: int) -> list[DltRecord]:
        """Records [start, end) of one partition (fewer if some were compacted away)."""
        self.consumer.assign([TopicPartition(topic, partition, start)])
        records: list[DltRecord] = []
        position = start
        idle_polls = 0
        while position < end:
            msg = self.consumer.poll(0.5)
            if msg is None:
                # Offsets without a record (transaction markers, compaction) end a read too.
                [at] = self.consumer.position([TopicPartition(topic, partition)])
                if at.offset >= end:
                    break
                idle_polls += 1
                if idle_polls * 0.5 > KAFKA_TIMEOUT_S:
                    raise OperationError(
                        f"reading {topic}[{partition}] stalled at offset {position}"
                    )
                continue
            idle_polls = 0
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    break
                raise OperationError(f"reading {topic}[{partition}]: {error.str()}")
            offset = msg.offset() or 0
            position = offset + 1
            if offset < end:
                records.append(_record(msg))
        self.consumer.unassign()
        return records


def _record(msg: Message) -> DltRecord:
    raw_headers = msg.headers() or []
    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    kind, millis = msg.timestamp()
    return DltRecord(
        origin=Origin(msg.topic() or "", msg.partition() or 0, msg.offset() or 0),
        timestamp=datetime.fromtimestamp(millis / 1000, UTC) if kind and millis > 0 else None,
        key=msg.key(),
        value=msg.value(),
        headers=tuple(
            (str(name), raw.encode() if isinstance(raw, str) else raw) for name, raw in pairs
        ),
    )


def text(raw: str | bytes | None) -> str | None:
    """A key, header or value as text; bytes that are not UTF-8 replaced, never an error."""
    if raw is None:
        return None
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")


def truncate(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."
