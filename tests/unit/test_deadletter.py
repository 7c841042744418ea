"""DeadLetterWriter.deliver: a refused record becomes a stand-in, an unanswered one is not
produced twice (contract 9a). A fake producer stands in for librdkafka."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from jobexec.core.deadletter import ORIGINAL_SIZE_HEADER, DeadLetter, DeadLetterWriter
from jobexec.core.events import Origin

Callback = Callable[[KafkaError | None, Any], None]


@dataclass
class FakeProducer:
    """Refuses values over `max_bytes` at produce(), as librdkafka does; answers on flush()
    unless `answering` is off (an unreachable topic: the record stays queued)."""

    max_bytes: int = 1000
    answering: bool = True
    broker_refuses: set[bytes] = field(default_factory=set)
    produced: list[dict[str, Any]] = field(default_factory=list)
    queued: list[tuple[Callback, bytes | None]] = field(default_factory=list)

    def produce(self, topic: str, key: Any, value: Any, headers: Any, on_delivery: Any) -> None:
        if value is not None and len(value) > self.max_bytes:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self.produced.append({"key": key, "value": value, "headers": dict(headers)})
        self.queued.append((on_delivery, key))

    def flush(self, _timeout: float) -> int:
        if not self.answering:
            return len(self.queued)
        self.answer()
        return 0

    def answer(self) -> None:
        """Fire the delivery callbacks, as librdkafka does on any poll or flush."""
        queued, self.queued = self.queued, []
        for callback, key in queued:
            refused = key in self.broker_refuses
            callback(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if refused else None, None)


def letter(key: bytes, value: bytes | None, offset: int = 7) -> DeadLetter:
    origin = Origin("jobs", 0, offset)
    return DeadLetter(key, value, "jobexec.events.PoisonRecord", "bad JSON", origin)


def writer(producer: FakeProducer) -> DeadLetterWriter:
    return DeadLetterWriter(producer, "jobs.DLT")  # type: ignore[arg-type]


def test_a_record_too_large_for_the_producer_goes_as_a_stand_in() -> None:
    producer = FakeProducer(max_bytes=1000)

    written = writer(producer).deliver([letter(b"big", b"x" * 5000)], 1)

    assert written == [True]
    [stand_in] = producer.produced
    assert stand_in["key"] == b"big"
    assert stand_in["value"] is None
    assert stand_in["headers"][ORIGINAL_SIZE_HEADER] == b"5000"
    assert stand_in["headers"]["kafka_dlt-original-offset"] == b"7"
    assert stand_in["headers"]["kafka_dlt-exception-fqcn"] == b"jobexec.events.PoisonRecord"
    message = stand_in["headers"]["kafka_dlt-exception-message"]
    assert message.startswith(b"bad JSON; value of 5000 bytes dropped: ")


def test_a_record_the_broker_refuses_is_tried_alone_then_sent_as_a_stand_in() -> None:
    producer = FakeProducer(broker_refuses={b"big"})
    letters = [letter(b"a", b"1", 1), letter(b"big", b"x" * 500, 2), letter(b"b", b"2", 3)]

    written = writer(producer).deliver(letters, 1)

    assert written == [True, True, True]
    sent = [(p["key"], p["value"]) for p in producer.produced]
    # the batch, then the refused one alone, then its stand-in; a and b once each
    assert sent == [(b"a", b"1"), (b"big", b"x" * 500), (b"b", b"2"), (b"big", b"x" * 500),
                    (b"big", None)]  # fmt: skip


def test_an_unanswered_letter_is_waited_for_not_produced_again() -> None:
    producer = FakeProducer(answering=False)
    dead = writer(producer)
    letters = [letter(b"a", b"1", 1), letter(b"b", b"2", 2)]

    assert dead.deliver(letters, 1) == [False, False]
    assert dead.deliver(letters, 1) == [False, False]
    producer.answering = True
    assert dead.deliver(letters, 1) == [True, True]

    assert [p["key"] for p in producer.produced] == [b"a", b"b"]


def test_a_letter_acknowledged_between_two_calls_is_not_produced_again() -> None:
    producer = FakeProducer(answering=False)
    dead = writer(producer)
    letters = [letter(b"a", b"1", 1)]
    assert dead.deliver(letters, 1) == [False]

    producer.answer()  # the broker answered while the bridge waited to retry

    assert dead.deliver(letters, 1) == [True]
    assert [p["key"] for p in producer.produced] == [b"a"]


def test_a_stand_in_in_flight_is_waited_for_not_written_twice() -> None:
    producer = FakeProducer(max_bytes=10, answering=False)
    dead = writer(producer)
    letters = [letter(b"big", b"x" * 50)]

    assert dead.deliver(letters, 1) == [False]
    assert dead.deliver(letters, 1) == [False]
    producer.answering = True
    assert dead.deliver(letters, 1) == [True]

    assert [(p["key"], p["value"]) for p in producer.produced] == [(b"big", None)]


def test_a_lone_surrogate_in_the_message_does_not_break_the_headers() -> None:
    headers = dict(DeadLetter(b"k", b"v", "X", "jobId \ud800", Origin("jobs", 0, 1)).headers())

    assert headers["kafka_dlt-exception-message"] == b"jobId \\ud800"
