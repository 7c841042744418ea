"""Kafka clients shared by the bridge, the workers and the scheduler."""

from __future__ import annotations

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]


def reliable_producer(properties: dict[str, str]) -> Producer:
    """acks=all and idempotence: a record is written once, and we know when it is."""
    return Producer({**properties, "enable.idempotence": True, "acks": "all", "linger.ms": 5})


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
