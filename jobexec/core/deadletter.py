"""Dead-letter records in Spring Kafka's format, so existing DLT tooling reads them.

A record the dead-letter topic refuses (too large, invalid) is not an outage: it is written as a
stand-in, its key and headers without its value, so that nothing stalls behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from jobexec.core.events import Origin

log = logging.getLogger("jobexec.deadletter")

# Spring Kafka's dead-letter headers, in the order its DeadLetterPublishingRecoverer adds them.
EXCEPTION_FQCN = "kafka_dlt-exception-fqcn"
EXCEPTION_MESSAGE = "kafka_dlt-exception-message"
ORIGINAL_TOPIC = "kafka_dlt-original-topic"
ORIGINAL_PARTITION = "kafka_dlt-original-partition"
ORIGINAL_OFFSET = "kafka_dlt-original-offset"
DLT_HEADERS = (
    EXCEPTION_FQCN,
    EXCEPTION_MESSAGE,
    ORIGINAL_TOPIC,
    ORIGINAL_PARTITION,
    ORIGINAL_OFFSET,
)
ORIGINAL_SIZE_HEADER = "jobexec-dlt-original-size"

# Answers that refuse this one record for good; any other failure may pass on a retry.
REFUSED = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,  # the broker's CORRUPT_MESSAGE
        KafkaError.INVALID_MSG_SIZE,
        KafkaError._BAD_MSG,
    }
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    exception_fqcn: str
    message: str
    origin: Origin  # the record (or, with partition and offset -1, the topic) it stands for
    original_size: int | None = None  # set on a stand-in: the size of the dropped value

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        headers: list[tuple[str, str | bytes | None]] = [
            (EXCEPTION_FQCN, _utf8(self.exception_fqcn)),
            (EXCEPTION_MESSAGE, _utf8(self.message)),
            (ORIGINAL_TOPIC, _utf8(self.origin.topic)),
            (ORIGINAL_PARTITION, str(self.origin.partition).encode()),
            (ORIGINAL_OFFSET, str(self.origin.offset).encode()),
        ]
        if self.original_size is not None:
            headers.append((ORIGINAL_SIZE_HEADER, str(self.original_size).encode()))
        return headers

    def stand_in(self, refusal: str) -> DeadLetter:
        """This letter without its value, saying why the value was dropped."""
        size = len(self.value or b"")
        reason = f"{self.message}; value of {size} bytes dropped: {refusal}"
        return replace(self, value=None, message=reason, original_size=size)


def _utf8(text: str) -> bytes:
    # A message may quote hostile input (a lone surrogate): never fail on it.
    return text.encode("utf-8", "backslashreplace")


class DeadLetterError(Exception):
    """The dead-letter topic did not acknowledge a record."""


class _Delivery:
    """What became of one produced record: not yet answered, delivered (ok) or refused."""

    def __init__(self) -> None:
        self.done = False
        self.error: KafkaError | None = None
        self.local = False  # refused by our own producer, before it reached the broker
        self.stand_in = False  # the delivery of a letter's stand-in, not of the letter

    def __call__(self, err: KafkaError | None, _msg: Message | None) -> None:
        self.done = True
        self.error = err

    @property
    def ok(self) -> bool:
        return self.done and self.error is None

    @property
    def refused(self) -> bool:
        return self.error is not None and self.error.code() in REFUSED


class DeadLetterWriter:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self._failures: list[str] = []
        self._in_flight: dict[DeadLetter, _Delivery] = {}

    def send(self, letter: DeadLetter) -> None:
        """Queue a record; `flush` tells whether everything queued was acknowledged."""
        try:
            self._producer.produce(
                self.topic,
                key=letter.key,
                value=letter.value,
                headers=letter.headers(),
                on_delivery=self._delivered,
            )
        except (KafkaException, BufferError) as exc:
            self._failures.append(str(exc))

    def _delivered(self, err: object, _msg: object) -> None:
        if err is not None:
            self._failures.append(str(err))

    def flush(self, timeout: float) -> None:
        remaining = self._producer.flush(timeout)
        failures, self._failures = self._failures, []
        if remaining or failures:
            detail = failures[0] if failures else f"{remaining} records unacknowledged"
            raise DeadLetterError(f"dead-letter topic {self.topic}: {detail}")

    def deliver(self, letters: Sequence[DeadLetter], timeout: float) -> list[bool]:
        """Write each letter, or its stand-in where the topic refuses it; True where written.

        False means the topic or the broker did not answer (an outage): call again with the
        same letters later. A letter (or stand-in) still in flight from an earlier call is
        waited for, not produced again, so a retry never writes one twice. Refused ones are
        tried alone first, since a broker refuses a whole batch for its size.
        """
        asked = set(letters)
        # Forget what an earlier call left behind and nobody asks about any more (revoked).
        self._in_flight = {k: d for k, d in self._in_flight.items() if k in asked or not d.done}
        outcomes = [self._in_flight_or_produce(letter) for letter in letters]
        if any(not d.done for d in outcomes):
            self._producer.flush(timeout)
        for i, delivery in enumerate(outcomes):
            if delivery.refused and not delivery.stand_in:
                outcomes[i] = self._deliver_refused(letters[i], delivery, timeout)
        written = []
        for letter, delivery in zip(letters, outcomes, strict=True):
            if delivery.done:
                self._in_flight.pop(letter, None)  # final, or failed: produced again next time
            else:
                self._in_flight[letter] = delivery
            # A refused stand-in is lost (logged): nothing smaller is left to write.
            written.append(delivery.ok or (delivery.stand_in and delivery.refused))
        return written

    def _in_flight_or_produce(self, letter: DeadLetter) -> _Delivery:
        delivery = self._in_flight.get(letter)
        # Produced again only when none went yet, or the last one failed for a passing reason.
        if delivery is None or (delivery.done and not delivery.ok and not delivery.refused):
            delivery = self._produce(letter)
            self._in_flight[letter] = delivery
        return delivery

    def _produce(self, letter: DeadLetter) -> _Delivery:
        delivery = _Delivery()
        try:
            self._producer.produce(
                self.topic,
                key=letter.key,
                value=letter.value,
                headers=letter.headers(),
                on_delivery=delivery,
            )
        except KafkaException as exc:  # refused before it left: too large for the producer
            delivery(exc.args[0], None)
            delivery.local = True
        except BufferError:
            delivery.done = True  # the local queue is full: not written, produced again later
            delivery.error = KafkaError(KafkaError._QUEUE_FULL)
        return delivery

    def _produce_alone(self, letter: DeadLetter, timeout: float) -> _Delivery:
        delivery = self._produce(letter)
        if not delivery.done:
            self._producer.flush(timeout)
        return delivery

    def _deliver_refused(self, letter: DeadLetter, first: _Delivery, timeout: float) -> _Delivery:
        """The letter alone, or its stand-in when the topic refuses it alone too."""
        # Our own producer's verdict does not change; the broker's may concern the whole batch.
        alone = first if first.local else self._produce_alone(letter, timeout)
        if not alone.refused:
            return alone
        refusal = alone.error.str() if alone.error is not None else "refused"
        stand_in = self._produce_alone(letter.stand_in(refusal), timeout)
        stand_in.stand_in = True
        origin = letter.origin
        where = f"{origin.topic}[{origin.partition}]@{origin.offset}"
        if stand_in.refused:
            log.error(
                "dead-letter topic %s refused %s even as a stand-in: %s",
                self.topic,
                where,
                stand_in.error.str() if stand_in.error else "",
                extra={"action": "dead_letter_lost", "offset": origin.offset},
            )
        elif stand_in.ok:
            log.warning(
                "dead-letter topic %s refused %s (%s): wrote a stand-in without its value",
                self.topic,
                where,
                refusal,
                extra={"action": "dead_letter_stand_in", "offset": origin.offset},
            )
        return stand_in
