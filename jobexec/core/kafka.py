"""Kafka clients shared by the bridge, the workers and the scheduler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)

log = logging.getLogger("jobexec.kafka")

# Errors that mean "cannot reach the cluster": librdkafka retries them by itself.
_UNREACHABLE = {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE}
# librdkafka's own log lines about each failed attempt; Connectivity reports the state instead.
_ATTEMPT_CHATTER = ("FAIL", "REQTMOUT", "Connection refused", "Disconnected", "Connect to")


class _DropAttemptChatter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(word in text for word in _ATTEMPT_CHATTER)


client_log = logging.getLogger("jobexec.kafka.client")
client_log.addFilter(_DropAttemptChatter())


class Connectivity:
    """A client's view of the cluster: up or down, logged once per change, not per attempt."""

    PROBE_EVERY_S = 5.0

    def __init__(self, client: str) -> None:
        self.client = client
        self.down = False
        self._last_other: int | None = None
        self._probed_at = 0.0

    def probe(self, ask: Callable[[], object]) -> None:
        """Every few seconds, ask the cluster something; its answer (or none) sets the state."""
        now = time.monotonic()
        if now - self._probed_at < self.PROBE_EVERY_S:
            return
        self._probed_at = now
        try:
            ask()
        except KafkaException as exc:
            if not self.down:
                self.down = True
                log.warning(
                    "%s: Kafka unreachable (%s); retrying",
                    self.client,
                    exc,
                    extra={"action": "kafka_down"},
                )
            return
        self.reachable()

    def error(self, err: KafkaError) -> None:
        """librdkafka's error_cb."""
        if err.code() in _UNREACHABLE:
            if not self.down:
                self.down = True
                log.warning(
                    "%s: Kafka unreachable (%s); retrying",
                    self.client,
                    err.str(),
                    extra={"action": "kafka_down"},
                )
        elif err.code() != self._last_other:
            self._last_other = err.code()
            log.warning(
                "%s: Kafka error: %s", self.client, err.str(), extra={"action": "kafka_error"}
            )

    def reachable(self) -> None:
        """Call when the cluster answered."""
        self._last_other = None
        if self.down:
            self.down = False
            log.info("%s: Kafka reachable again", self.client, extra={"action": "kafka_up"})


def client_config(
    properties: dict[str, str], error_cb: Callable[[KafkaError], None]
) -> dict[str, Any]:
    """What every Kafka client of the service gets: the passthrough properties, and logging."""
    return {**properties, "error_cb": error_cb, "logger": client_log}


def reliable_producer(
    properties: dict[str, str],
    connection: Connectivity | None = None,
    max_message_bytes: int | None = None,
) -> Producer:
    """acks=all and idempotence: a record is written once, and we know when it is.

    `max_message_bytes` sets librdkafka's `message.max.bytes`, unless the operator set it.
    """
    connection = connection or Connectivity("producer")
    sizing = {"message.max.bytes": max_message_bytes} if max_message_bytes else {}
    return Producer(
        {
            **sizing,
            **client_config(properties, connection.error),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
        }
    )


# Apache Kafka's default for a topic's max.message.bytes (and the broker's message.max.bytes).
DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
# Room for the kafka_dlt-* headers (the exception message included) on top of the record.
DEAD_LETTER_HEADROOM_BYTES = 64 * 1024
_LIBRDKAFKA_MAX_MESSAGE_BYTES = 1_000_000_000


def max_message_bytes(properties: dict[str, str], topic: str, timeout: float = 5.0) -> int:
    """The largest record batch `topic` accepts: its `max.message.bytes`, else the broker's
    `message.max.bytes`, else Apache Kafka's default (brokers that describe neither)."""
    admin = AdminClient(client_config(properties, Connectivity("admin").error))
    try:
        metadata = admin.list_topics(topic, timeout=timeout)
        resources = [ConfigResource(ConfigResource.Type.TOPIC, topic)]
        resources += [ConfigResource(ConfigResource.Type.BROKER, str(b)) for b in metadata.brokers]
        futures = admin.describe_configs(resources, request_timeout=timeout)
        for resource in resources:  # the topic's own setting first
            topic_level = resource.restype == ConfigResource.Type.TOPIC
            name = "max.message.bytes" if topic_level else "message.max.bytes"
            entry = futures[resource].result(timeout).get(name)
            if entry is not None and entry.value and entry.value.isdigit():
                return int(entry.value)
    except (KafkaException, ValueError) as exc:
        log.info(
            "cannot read max.message.bytes of %s (%s); assuming %s",
            topic,
            exc,
            DEFAULT_MAX_MESSAGE_BYTES,
            extra={"action": "max_message_bytes_unknown"},
        )
    return DEFAULT_MAX_MESSAGE_BYTES


def dead_letter_producer(
    properties: dict[str, str], source_topic: str, connection: Connectivity | None = None
) -> Producer:
    """A reliable producer that takes the largest record `source_topic` can hold, plus the
    dead-letter headers: a poison record is never refused by our own producer for its size."""
    largest = max_message_bytes(properties, source_topic) + DEAD_LETTER_HEADROOM_BYTES
    size = min(largest, _LIBRDKAFKA_MAX_MESSAGE_BYTES)
    log.info(
        "dead-letter producer takes records up to %s bytes",
        properties.get("message.max.bytes", size),
        extra={"action": "dead_letter_sized"},
    )
    return reliable_producer(properties, connection, size)


def ensure_topics(properties: dict[str, str], topics: dict[str, int], timeout: float = 30) -> None:
    """Create the topics that are missing, with the given partition counts."""
    config: dict[str, str | int | float | bool] = dict(properties)
    admin = AdminClient(config)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [NewTopic(t, n, 1) for t, n in topics.items() if t not in existing]
    if not missing:
        return
    for future in admin.create_topics(missing, request_timeout=timeout).values():
        try:
            future.result(timeout)
        except KafkaException as exc:
            if "already exists" not in str(exc).lower():
                raise
