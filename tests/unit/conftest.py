"""Unit-test fixtures: a Bridge built against no broker, for tests that swap in fakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer

from bridge.consumer import Bridge
from jobexec.core.config import Settings
from jobexec.core.sections import BridgeSection, KafkaSection

OfflineBridge = Callable[..., Bridge]


@pytest.fixture
def offline_bridge() -> Iterator[OfflineBridge]:
    """`offline_bridge(settings, publisher, writer)` -> a Bridge whose consumer points at a closed
    port (it never fetches); its real consumer is closed after the test even if a fake replaced it.
    """
    consumers: list[Consumer] = []

    def build(
        settings: dict[str, str] | None = None, publisher: Any = None, writer: Any = None
    ) -> Bridge:
        closed_port = {"CONFIGS_KAFKA_BOOTSTRAPSERVERS": "127.0.0.1:9"}
        loaded = Settings.load({**closed_port, **(settings or {})})
        built = Bridge(
            KafkaSection.from_settings(loaded),
            BridgeSection.from_settings(loaded),
            publisher,
            writer,
        )
        consumers.append(built.consumer)
        return built

    yield build
    for consumer in consumers:
        consumer.close()
