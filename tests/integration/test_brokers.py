"""Brokers of contract 10: RabbitMQ durable or quorum queues, Redis Sentinel; depth via kombu."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bridge.publisher import Enqueue, TaskPublisher
from bridge.routing import Router
from jobexec.core.celeryapp import create_app
from jobexec.core.config import Settings
from jobexec.core.events import JobEvent, Origin
from jobexec.core.routes import Routes
from jobexec.testing.network import free_port
from jobexec.testing.rabbitmq_queue import RabbitBroker
from jobexec.testing.redis_server import PrivateRedis, redis_server_binary
from jobexec.testing.waiting import wait_until
from tests.integration.bridge_support import environment, job_ids, new_job_ids


def _publisher(broker: RabbitBroker, **overrides: str) -> TaskPublisher:
    settings = Settings.load(environment(broker.properties(), overrides))
    return TaskPublisher(create_app(settings), Router(Routes.from_settings(settings), None), 50)


def _enqueues(ids: list[str]) -> list[Enqueue]:
    events = [JobEvent.parse(json.dumps({"jobId": i, "attempt": 1}).encode()) for i in ids]
    return [Enqueue(event, Origin("job-events", 0, n)) for n, event in enumerate(events)]


def test_given_rabbitmq_then_the_queue_is_durable_and_its_depth_counts_what_was_published(
    rabbitmq_broker: RabbitBroker,
) -> None:
    publisher = _publisher(rabbitmq_broker)
    ids = new_job_ids(25)
    try:
        # Given a queue nobody declared yet, its depth is 0 (and asking declares it)
        assert publisher.queue_depth() == 0
        # When 25 tasks are published
        publisher.publish(_enqueues(ids))
        # Then the bridge's depth and RabbitMQ agree, the queue is durable, messages persistent
        assert publisher.queue_depth() == 25
    finally:
        publisher.close()
    assert rabbitmq_broker.depth() == 25
    assert rabbitmq_broker.queue_is_durable()
    tasks = rabbitmq_broker.tasks()
    assert sorted(job_ids(tasks)) == sorted(ids)
    assert all(task.persistent for task in tasks)


def test_given_queue_type_quorum_then_the_bridge_declares_a_quorum_queue(
    rabbitmq_broker: RabbitBroker,
) -> None:
    publisher = _publisher(rabbitmq_broker, **{"configs.celery.queue-type": "quorum"})
    try:
        publisher.publish(_enqueues(new_job_ids(3)))
        assert publisher.queue_depth() == 3
    finally:
        publisher.close()
    assert rabbitmq_broker.queue_type_is("quorum")
    assert not rabbitmq_broker.queue_type_is("classic")


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[str, PrivateRedis]]:
    """A private Redis master and a Sentinel watching it as `mymaster`: (sentinel URL, master)."""
    master = PrivateRedis()
    master.start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"  # Sentinel rewrites its file: a private, writable one
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {master.port} 1\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [redis_server_binary(), str(conf), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def knows_master() -> bool:
            try:
                with redis.Redis(port=port, socket_connect_timeout=1) as client:
                    return bool(client.sentinel_get_master_addr_by_name("mymaster"))
            except redis.RedisError:
                return False

        wait_until(knows_master, 15, message="Sentinel did not answer for mymaster")
        yield f"sentinel://127.0.0.1:{port}/0", master
    finally:
        proc.terminate()
        proc.wait(10)
        master.stop()


def test_given_a_sentinel_url_and_its_master_name_then_tasks_reach_the_master(
    sentinel: tuple[str, PrivateRedis],
) -> None:
    url, master = sentinel
    queue = f"jobs-{uuid.uuid4().hex[:8]}"
    # Given a sentinel:// broker URL and the master's name passed through to Celery
    settings = Settings.load(
        environment(
            {
                "configs.celery.broker-url": url,
                "configs.celery.queue": queue,
                "configs.celery.properties.broker_transport_options.master_name": "mymaster",
            }
        )
    )
    router = Router(Routes.from_settings(settings), None)
    publisher = TaskPublisher(create_app(settings), router, batch_size=50)
    ids = new_job_ids(5)
    try:
        # When the bridge's publisher publishes and measures
        publisher.publish(_enqueues(ids))
        depth = publisher.queue_depth()
    finally:
        publisher.close()

    # Then the tasks are on the master Sentinel named, and the depth says so
    assert depth == 5
    with master.client() as client:
        assert client.llen(queue) == 5
