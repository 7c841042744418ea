"""Read the dead-letter topic and replay chosen records to the job-events topic, each once.

Reading uses assign(), never a group join, so it starts at once and moves no committed offset.
A replay is recorded in `dlq_replays` before it is published, and the marker is removed when
the publish fails, so a record is republished at most once however often it is asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from jobexec.core.config import Settings
from jobexec.core.db.admin import JobAdmin
from jobexec.core.db.states import JobStatus
from jobexec.core.db.store import JobStore
from jobexec.core.events import JobEvent, Origin, PoisonRecord
from jobexec.core.kafka import reliable_producer
from jobexec.core.masking import mask_text
from jobexec.core.outcomes import EXHAUSTED_FQCN
from jobexec.core.printable import printable
from jobexec.operations.errors import InvalidInput, OperationError

DLT_HEADERS = (
    "kafka_dlt-exception-fqcn",
    "kafka_dlt-exception-message",
    "kafka_dlt-original-topic",
    "kafka_dlt-original-partition",
    "kafka_dlt-original-offset",
)
REPLAYED_FROM = "jobexec-replayed-from"
KAFKA_TIMEOUT_S = 15.0
PUBLISH_TIMEOUT_MS = 20000  # librdkafka gives up on a record after this: flush always resolves
# librdkafka would print every failed connection attempt; the operation reports the outcome once.
QUIET = {"log_level": "0"}
EXHAUSTED_PREFIX = "attempts exhausted after "  # how outcomes.exhaustion_reason begins
# The record's timestamp is the worker's clock, failed_at the database's: allow this much skew.
CLOCK_SKEW = timedelta(seconds=1)


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


# --- replay ---------------------------------------------------------------------------------

Verdict = Literal["replayed", "skipped", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class RecordReplay:
    """What became of one record: its verdict, and a line saying so."""

    origin: Origin
    verdict: Verdict
    message: str


@dataclass(slots=True)
class ReplayTally:
    """The counts of a replay, and the closing line that gives them."""

    dlt: str
    target: str
    dry_run: bool
    counts: dict[str, int] = field(
        default_factory=lambda: {"replayed": 0, "skipped": 0, "refused": 0, "failed": 0}
    )

    def add(self, outcome: RecordReplay) -> None:
        self.counts[outcome.verdict] += 1

    @property
    def ok(self) -> bool:
        """Whether every record was replayed or had been already."""
        return not (self.counts["failed"] or self.counts["refused"])

    @property
    def message(self) -> str:
        verb = "would replay" if self.dry_run else "replayed"
        counts = self.counts
        return (
            f"{verb} {counts['replayed']}, skipped {counts['skipped']} already replayed, "
            f"refused {counts['refused']}, failed {counts['failed']} ({self.dlt} -> {self.target})"
        )


class Replayer:
    """Republishes dead-letter records to the job-events topic, each at most once.

    An exhausted-run record re-arms its FAILED job (RUNNING, attempts 1, a new run due now) and
    is published as attempt 1; any other record is republished unchanged and re-arms nothing.
    """

    def __init__(self, store: JobStore, settings: Settings, dry_run: bool) -> None:
        self.store = store
        self.admin = JobAdmin(store)
        self.settings = settings
        self.dlt = settings.dead_letter_topic
        self.target: str = settings.get("configs.kafka.topic.job-events")
        self.dry_run = dry_run
        self.tally = ReplayTally(self.dlt, self.target, dry_run)
        self._producer: Producer | None = None
        self._errors: list[str] = []

    def replay(self, records: Sequence[DltRecord]) -> Iterator[RecordReplay]:
        """Each record's outcome as it is decided, counted in `tally` (a replay of many records
        reports as it goes)."""
        done = self.admin.replayed(self.dlt)
        for record in records:
            when = done.get((record.origin.partition, record.origin.offset))
            if when is None:
                outcome = self._replay(record)
            else:
                outcome = RecordReplay(
                    record.origin,
                    "skipped",
                    f"skipped {record.position}: already replayed at {when.isoformat()}",
                )
            self.tally.add(outcome)
            yield outcome
        if self._producer is not None:
            self._producer.flush(5)

    def _replay(self, record: DltRecord) -> RecordReplay:
        note, rearm_job, refusal = self._plan(record)
        if refusal is not None:
            verb = "would refuse" if self.dry_run else "refused"
            return self._outcome(
                record, "refused", f"{verb} {record.position}: {printable(refusal)}"
            )
        if self.dry_run:
            return self._outcome(
                record,
                "replayed",
                f"would replay {record.position} -> {self.target}: {printable(note)}",
            )
        origin = record.origin
        if not self.admin.mark_replayed(self.dlt, origin.partition, origin.offset):
            return self._outcome(
                record,
                "skipped",
                f"skipped {record.position}: already replayed (by a concurrent replay)",
            )
        value = record.value
        undo: tuple[dict[str, Any], datetime] | None = None
        if rearm_job is not None:
            change, before = self.admin.rearm(rearm_job)
            if change.applied and before is not None and change.at is not None:
                value = JobEvent(rearm_job, 1, change.at).to_json()
                undo = (before, change.at)
                note = f"job {rearm_job} re-armed (RUNNING, attempt 1)"
            else:
                note = (
                    f"job {rearm_job} changed meanwhile (now {change.status}); published as is, "
                    "the worker will drop it unless the job is RUNNING with that attempt"
                )
        error = self._publish(record, value)
        if error is None:
            return self._outcome(
                record,
                "replayed",
                f"replayed {record.position} -> {self.target}: {printable(note)}",
            )
        self.admin.unmark_replayed(self.dlt, origin.partition, origin.offset)
        if undo is not None:
            self.admin.undo_rearm(*undo)
        return self._outcome(
            record,
            "failed",
            f"failed {record.position}: {printable(error)}; not marked as replayed",
        )

    @staticmethod
    def _outcome(record: DltRecord, verdict: Verdict, message: str) -> RecordReplay:
        return RecordReplay(record.origin, verdict, message)

    def _plan(self, record: DltRecord) -> tuple[str, str | None, str | None]:
        """What replaying this record means: a note, the job to re-arm, or why it is refused.

        Only an exhausted-run record re-arms a job, and only when its key is the job id of its
        value, the job FAILED by exhausting its tries, and the record is not older than that
        failure. Any other record (a poison record above all) is republished unchanged.
        """
        fqcn = record.header("kafka_dlt-exception-fqcn")
        if fqcn != EXHAUSTED_FQCN:
            try:
                event = JobEvent.parse(record.value)
            except PoisonRecord as exc:
                return f"poison record ({exc}): it will be dead-lettered again", None, None
            note = (
                f"not an exhausted run ({fqcn or 'no exception header'}): republished unchanged, "
                f"job {event.job_id} is not re-armed"
            )
            return note, None, None
        try:
            event = JobEvent.parse(record.value)
        except PoisonRecord as exc:
            return "", None, f"exhausted-run record whose value is not a JobEvent ({exc})"
        key = text(record.key)
        if key != event.job_id:
            return "", None, f"its key {key!r} is not the job id {event.job_id!r} of its value"
        row = self.store.job_row(event.job_id)
        if row is None:
            return "", None, f"job {event.job_id} does not exist"
        if row["status"] == JobStatus.FAILED:
            refusal = _stale(record, row)
            if refusal is not None:
                return "", None, refusal
            if self.dry_run:
                return f"would re-arm FAILED job {event.job_id} (RUNNING, attempt 1)", None, None
            return "", event.job_id, None
        if row["status"] == JobStatus.RUNNING and row["attempts"] == event.attempt:
            return (
                f"job {event.job_id} is RUNNING at attempt {event.attempt}: published as is",
                None,
                None,
            )
        return (
            f"job {event.job_id} is {row['status']} (attempts {row['attempts']}), not FAILED: "
            "published as is, the worker will drop it as stale",
            None,
            None,
        )

    def _publish(self, record: DltRecord, value: bytes | None) -> str | None:
        """Produce one record and wait for its acknowledgement; the error, if any."""
        if self._producer is None:
            self._producer = reliable_producer(
                {
                    **self.settings.kafka_client_properties,
                    "message.timeout.ms": str(PUBLISH_TIMEOUT_MS),
                }
            )
        headers: list[tuple[str, str | bytes | None]] = [
            (name, raw)
            for name, raw in record.headers
            if not name.startswith("kafka_dlt-") and name != REPLAYED_FROM
        ]
        headers.append((REPLAYED_FROM, f"{self.dlt}:{record.position}".encode()))
        self._errors = []
        self._producer.produce(
            self.target,
            key=record.key,
            value=value,
            headers=headers,
            on_delivery=self._delivered,
        )
        left = self._producer.flush(PUBLISH_TIMEOUT_MS / 1000 + 10)
        if self._errors:
            return self._errors[0]
        if left:
            return f"not acknowledged by {self.target} in time"
        return None

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err.str())


def _stale(record: DltRecord, row: dict[str, Any]) -> str | None:
    """Why this exhausted-run record must not re-arm its FAILED job, if it must not."""
    job_id = row["job_id"]
    reason = row["failure_reason"] or ""
    if not reason.startswith(EXHAUSTED_PREFIX):
        return (
            f"job {job_id} failed for good, not by exhausting its tries "
            f"({truncate(mask_text(reason) or 'no failure reason', 80)}); "
            f"`jobexec jobs retry {job_id}` runs it again"
        )
    failed_at = row["failed_at"]
    if failed_at is None:
        return None
    if record.timestamp is None or record.timestamp < failed_at - CLOCK_SKEW:
        when = record.timestamp.isoformat() if record.timestamp else "no timestamp"
        return (
            f"stale: the record ({when}) is older than job {job_id}'s failure "
            f"({failed_at.astimezone(UTC).isoformat()})"
        )
    return None


def text(raw: str | bytes | None) -> str | None:
    """A key, header or value as text; bytes that are not UTF-8 replaced, never an error."""
    if raw is None:
        return None
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")


def truncate(value: str, width: int) -> str:
    return value if len(value) <= width else value[: width - 3] + "..."
