"""Dead-letter records in Spring Kafka's format, so existing DLT tooling reads them."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException, Producer


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    exception_fqcn: str
    message: str
    topic: str
    partition: int
    offset: int

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        return [
            ("kafka_dlt-exception-fqcn", self.exception_fqcn.encode()),
            ("kafka_dlt-exception-message", self.message.encode()),
            ("kafka_dlt-original-topic", self.topic.encode()),
            ("kafka_dlt-original-partition", str(self.partition).encode()),
            ("kafka_dlt-original-offset", str(self.offset).encode()),
        ]


class DeadLetterError(Exception):
    """The dead-letter topic did not acknowledge a record."""


class DeadLetterWriter:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self.topic = topic
        self._failures: list[str] = []

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
