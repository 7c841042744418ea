"""Replay chosen dead-letter records to the job-events topic, each at most once.

A replay is recorded in `dlq_replays` before it is published, and the marker is removed when
the publish fails, so a record is republished at most once however often it is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from confluent_kafka import KafkaError, Message, Producer

from jobexec.core.config import Settings
from jobexec.core.db.admin import JobAdmin
from jobexec.core.db.states import JobStatus
from jobexec.core.db.store import JobStore
from jobexec.core.deadletter import EXCEPTION_FQCN
from jobexec.core.events import JobEvent, Origin, PoisonRecord
from jobexec.core.kafka import reliable_producer
from jobexec.core.masking import mask_text
from jobexec.core.outcomes import EXHAUSTED_FQCN
from jobexec.core.printable import printable
from jobexec.core.sections import KafkaSection
from jobexec.operations.deadletters import DltRecord, text, truncate

REPLAYED_FROM = "jobexec-replayed-from"
PUBLISH_TIMEOUT_MS = 20000  # librdkafka gives up on a record after this: flush always resolves
EXHAUSTED_PREFIX = "attempts exhausted after "  # how outcomes.exhaustion_reason begins
# The record's timestamp is the worker's clock, failed_at the database's: allow this much skew.
CLOCK_SKEW = timedelta(seconds=1)

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
        self.target = KafkaSection.from_settings(settings).job_events_topic
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
        fqcn = record.header(EXCEPTION_FQCN)
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
