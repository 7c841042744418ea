"""Bridge hand-over after a failure part-way: only what did not go through is sent again, and an
offset is stored only behind records handed over with all before them (contract 4, 9a).

Fakes for the publisher, the dead-letter writer and the consumer's offset store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
import redis
from confluent_kafka import TopicPartition

from bridge.consumer import Bridge, _Record
from bridge.publisher import Enqueue
from jobexec.core.deadletter import DeadLetter
from jobexec.core.events import JobEvent, Origin
from tests.unit.conftest import OfflineBridge


@dataclass
class FakePublisher:
    """Accepts every batch except one holding a job of `refuse` (Redis down: nothing of it)."""

    refuse: set[str] = field(default_factory=set)
    published: list[str] = field(default_factory=list)

    def publish(self, items: Sequence[Enqueue]) -> None:
        ids = [item.event.job_id for item in items]
        if self.refuse.intersection(ids):
            raise redis.ConnectionError("Redis is down")
        self.published.extend(ids)

    def queue_depth(self) -> int:
        return 0

    def close(self) -> None:
        pass


@dataclass
class FakeWriter:
    """Writes every letter except the offsets in `unreachable` (an outage: False)."""

    unreachable: set[int] = field(default_factory=set)
    written: list[int] = field(default_factory=list)
    topic: str = "jobs.DLT"

    def deliver(self, letters: Sequence[DeadLetter], _timeout: float) -> list[bool]:
        offsets = [letter.origin.offset for letter in letters]
        self.written.extend(o for o in offsets if o not in self.unreachable)
        return [o not in self.unreachable for o in offsets]


@dataclass
class FakeOffsets:
    stored: list[tuple[int, int]] = field(default_factory=list)

    def store_offsets(self, offsets: list[TopicPartition]) -> None:
        self.stored.extend((tp.partition, tp.offset) for tp in offsets)


@pytest.fixture
def bridge(offline_bridge: OfflineBridge) -> Bridge:
    built = offline_bridge(
        {"CONFIGS_KAFKA_CONSUMER_MAXPOLLRECORDS": "2"},  # tasks go two by two
        FakePublisher(),
        FakeWriter(),
    )
    built.consumer = FakeOffsets()  # type: ignore[assignment]
    return built


def event(partition: int, offset: int) -> _Record:
    job = JobEvent(f"job_{partition}_{offset}", 1, None)
    origin = Origin("jobs", partition, offset)
    return _Record(origin, Enqueue(job, origin))


def poison(partition: int, offset: int) -> _Record:
    origin = Origin("jobs", partition, offset)
    letter = DeadLetter(b"k", b"{", "jobexec.events.PoisonRecord", "bad", origin)
    return _Record(origin, letter)


def test_after_a_dead_letter_outage_only_the_letter_is_retried(bridge: Bridge) -> None:
    publisher, writer = bridge.publisher, bridge.dead_letters
    assert isinstance(publisher, FakePublisher) and isinstance(writer, FakeWriter)
    offsets = bridge.consumer
    assert isinstance(offsets, FakeOffsets)
    # Given a batch over two partitions whose dead letter at 0@2 cannot be written yet
    writer.unreachable = {2}
    bridge._pending = [event(0, 0), event(0, 1), poison(0, 2), event(0, 3), event(1, 0)]

    # When it is handed over
    bridge._hand_over()

    # Then every task went, partition 1 is stored to its end, partition 0 only up to the letter
    assert publisher.published == ["job_0_0", "job_0_1", "job_0_3", "job_1_0"]
    assert sorted(offsets.stored) == [(0, 2), (1, 1)]
    assert bridge._outage

    # When the retry finds the dead-letter topic back
    writer.unreachable = set()
    offsets.stored.clear()
    bridge._hand_over()

    # Then only the letter is written, no task is published again, and partition 0 is stored
    assert writer.written == [2]
    assert publisher.published == ["job_0_0", "job_0_1", "job_0_3", "job_1_0"]
    assert offsets.stored == [(0, 4)]
    assert bridge._pending == []
    assert not bridge._outage
    assert (bridge.stats.enqueued, bridge.stats.dead_lettered) == (4, 1)


def test_after_redis_failed_on_the_second_batch_only_the_rest_is_enqueued(bridge: Bridge) -> None:
    publisher = bridge.publisher
    offsets = bridge.consumer
    assert isinstance(publisher, FakePublisher) and isinstance(offsets, FakeOffsets)
    # Given five events, of which the second batch of two meets a Redis outage
    publisher.refuse = {"job_0_2"}
    bridge._pending = [event(0, n) for n in range(5)]

    # When they are handed over, and again once Redis is back
    bridge._hand_over()
    assert publisher.published == ["job_0_0", "job_0_1"]
    assert offsets.stored == [(0, 2)]
    assert bridge._outage
    publisher.refuse = set()
    bridge._hand_over()

    # Then every task was published once and the offsets reach the end
    assert publisher.published == [f"job_0_{n}" for n in range(5)]
    assert offsets.stored == [(0, 2), (0, 5)]
    assert not bridge._outage


def test_an_unexpected_exception_while_translating_dead_letters_the_record(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Message:
        def topic(self) -> str:
            return "jobs"

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return 5

        def key(self) -> bytes:
            return b"k"

        def value(self) -> bytes:
            return b"{}"

    def explode(_value: bytes | None) -> JobEvent:
        raise MemoryError("no room")

    monkeypatch.setattr(JobEvent, "parse", staticmethod(explode))

    record = bridge._translate(Message())  # type: ignore[arg-type]

    assert isinstance(record.action, DeadLetter)
    assert record.action.exception_fqcn == "builtins.MemoryError"
    assert record.action.message == "no room"
    assert (record.action.key, record.action.value, record.action.origin.offset) == (b"k", b"{}", 5)
