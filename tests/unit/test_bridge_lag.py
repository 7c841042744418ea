"""The bridge's lag gauge: from the last fetch while records flow (no broker round trip in the
consume loop), from the broker while its partitions are paused (nothing is fetched then). Its
sign-of-life metadata request goes on the cluster client, never behind the consumer's fetch.

A fake consumer and a fake cluster client record what the bridge asks of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY

from bridge.consumer import Bridge
from tests.unit.conftest import OfflineBridge

TOPIC = "jobs-lag"


@dataclass
class FakeConsumer:
    """Three partitions read up to `positions`; ends per source: fetched and on the broker."""

    positions: dict[int, int]
    fetched_ends: dict[int, int]
    broker_ends: dict[int, int]
    asked: list[str] = field(default_factory=list)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(TOPIC, p) for p in self.positions]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(TOPIC, tp.partition, self.positions[tp.partition]) for tp in partitions
        ]

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float = 0, cached: bool = False
    ) -> tuple[int, int]:
        if cached:
            return 0, self.fetched_ends[tp.partition]
        self.asked.append(f"watermarks {tp.partition}")
        return 0, self.broker_ends[tp.partition]


@dataclass
class FakeCluster:
    """The bridge's own metadata client."""

    asked: list[str] = field(default_factory=list)

    def list_topics(self, topic: str, timeout: float) -> None:
        self.asked.append(f"metadata {topic}")


def lag(partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "jobexec_bridge_consumer_lag", {"topic": TOPIC, "partition": str(partition)}
    )


@pytest.fixture
def bridge(offline_bridge: OfflineBridge) -> Bridge:
    built = offline_bridge()  # no publisher or dead-letter writer: nothing is handed over here
    built.topic = TOPIC
    return built


def test_given_records_flowing_when_the_lag_is_measured_then_the_broker_is_not_asked_for_ends(
    bridge: Bridge,
) -> None:
    # Given partitions read to 10, 20, -1001 (nothing committed), whose last fetches ended at 15,
    # 20 and -1001 (no fetch answered yet)
    fake = FakeConsumer(
        positions={0: 10, 1: 20, 2: -1001},
        fetched_ends={0: 15, 1: 20, 2: -1001},
        broker_ends={0: 99, 1: 99, 2: 99},
    )
    bridge.consumer = fake  # type: ignore[assignment]
    cluster = bridge.cluster = FakeCluster()  # type: ignore[assignment]

    # When the bridge measures its lag
    bridge._measure_lag()

    # Then one metadata request, on the cluster client, was the broker's only work (nothing waits
    # behind the consumer's fetch), and the lag is what the fetches say
    assert cluster.asked == [f"metadata {TOPIC}"]
    assert fake.asked == []
    assert (lag(0), lag(1)) == (5.0, 0.0)


def test_given_paused_partitions_when_the_lag_is_measured_then_the_broker_gives_their_ends(
    bridge: Bridge,
) -> None:
    # Given the bridge paused by backpressure: its partitions are not fetched, records pile up
    fake = FakeConsumer(
        positions={0: 10, 1: 20, 2: 30},
        fetched_ends={0: 10, 1: 20, 2: 30},
        broker_ends={0: 110, 1: 20, 2: 31},
    )
    bridge.consumer = fake  # type: ignore[assignment]
    cluster = bridge.cluster = FakeCluster()  # type: ignore[assignment]
    bridge.stats.paused = True

    # When the bridge measures its lag
    bridge._measure_lag()

    # Then the broker was asked for each end, and the lag counts what piled up
    assert cluster.asked == [f"metadata {TOPIC}"]
    assert fake.asked == ["watermarks 0", "watermarks 1", "watermarks 2"]
    assert (lag(0), lag(1), lag(2)) == (100.0, 0.0, 1.0)
