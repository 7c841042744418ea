"""RabbitMQ as the Celery broker: durable or quorum queues, depth through kombu (contract 10)."""

from __future__ import annotations

import json

from bridge.publisher import Enqueue, TaskPublisher
from bridge.routing import Router
from jobexec.config import Settings
from jobexec.events import JobEvent
from jobexec.routes import Routes
from tests.integration.bridge_support import environment, job_ids, new_job_ids
from tests.support.rabbitmq_queue import RabbitBroker
from workers.celeryconf import create_app


def _publisher(broker: RabbitBroker, **overrides: str) -> TaskPublisher:
    settings = Settings.load(environment(broker.properties(), overrides))
    return TaskPublisher(create_app(settings), Router(Routes.from_settings(settings), None), 50)


def _enqueues(ids: list[str]) -> list[Enqueue]:
    events = [JobEvent.parse(json.dumps({"jobId": i, "attempt": 1}).encode()) for i in ids]
    return [Enqueue(event, "job-events", 0, n) for n, event in enumerate(events)]


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
