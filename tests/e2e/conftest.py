"""End-to-end tests: the real `jobexec` processes against Tansu, PostgreSQL and Redis, one
`Stack` (`jobexec.testing.stack`) per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.http_recorder import HttpRecorder
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.processes import Cli
from jobexec.testing.stack import Stack
from jobexec.testing.task_messages import CeleryBroker


@pytest.fixture
def stack(
    kafka: KafkaTopics,
    pg_url: str,
    celery_broker: CeleryBroker,
    config_files: ConfigFiles,
    cli: Cli,
    http_recorder: HttpRecorder,
) -> Iterator[Stack]:
    """jobexec on this test's topics, database and queue: Redis unless the test module
    parametrizes `celery_broker` (see tests/conftest.py)."""
    built = Stack(kafka, pg_url, celery_broker, config_files, cli, http_recorder)
    try:
        yield built
    finally:
        built.close()
