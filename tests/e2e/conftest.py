"""End-to-end tests: the real `jobexec` processes against Tansu, PostgreSQL and Redis, one
`Stack` (`jobexec.testing.stack`) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

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


CHROMIUM = "/usr/bin/chromium"  # Debian's package, installed by scripts/test.sh; no download


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium driven by Playwright."""
    assert Path(CHROMIUM).is_file(), "chromium is not installed: scripts/test.sh installs it"
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    try:
        yield launched
    finally:
        launched.close()
