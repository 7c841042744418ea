"""7. Bridge throughput on RabbitMQ with publisher confirms, beside a raw kombu publish loop.

The bridge reads a pre-filled topic and publishes each task to a durable RabbitMQ queue as a
persistent message, waiting for the broker's confirm (`confirm_publish`), as it does in
production. Its ceiling, in the same run: a plain kombu loop publishing messages of the same
shape (Celery protocol 2, JSON, persistent) to a durable queue over one connection with
`confirm_publish` on, so each publish waits for its confirm as well; and the same loop without
confirms, to show what confirms cost. Rates count from the first message seen in the queue, as
the Redis measurement does. Every queue is made for the run on the local RabbitMQ and deleted
after it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import replace
from typing import Any

import kombu
from amqp.exceptions import NotFound

from bench.profiles import Profile
from bench.raw_celery_app import raw_kwargs
from bench.results import Measurement, Target, ratio
from bench.stack import Deployment, EventProducer, Stack, new_ids

# The tests' RabbitMQ (jobexec/testing/rabbitmq_queue.py); queues of the run's own on it.
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
_kombu: Any = kombu  # kombu has no type hints

BRIDGE = "jobexec bridge, RabbitMQ, confirms"
RAW_CONFIRMED = "raw kombu publish, confirms"
RAW_UNCONFIRMED = "raw kombu publish, no confirms"


def run(stack: Stack, profile: Profile) -> Measurement:
    try:
        with _kombu.Connection(RABBITMQ_URL, connect_timeout=3) as conn:
            conn.connect()
    except Exception as exc:
        raise RuntimeError(f"RabbitMQ does not answer at {RABBITMQ_URL}: {exc}") from exc
    m = Measurement("rabbitmq_throughput", "7 bridge on RabbitMQ")
    # Each publish waits for its confirm: the one-at-a-time count, not the pipelined one.
    events = profile.single_publishes
    deployment = stack.deploy(partitions=3, database=False)
    producer = EventProducer(stack.bootstrap)
    producer.produce_events(deployment.topics.topic, new_ids("job_rmq_", events))
    producer.flush()
    for _ in range(profile.repetitions):
        m.figure(BRIDGE, "events/s").samples.append(_bridge(stack, deployment, events))
        m.figure(RAW_CONFIRMED, "msgs/s").samples.append(_publish(events, confirm=True))
        m.figure(RAW_UNCONFIRMED, "msgs/s").samples.append(_publish(events, confirm=False))
    m.details = {"events": events, "partitions": 3, "broker": "RabbitMQ, durable queue"}
    m.targets.append(
        Target(
            "bridge on RabbitMQ >= 0.8 x raw kombu publish, confirms",
            ratio(m.median(BRIDGE), m.median(RAW_CONFIRMED)),
            ">=",
            0.8,
        )
    )
    m.details["ratios"] = {
        "raw confirmed / raw unconfirmed": ratio(m.median(RAW_CONFIRMED), m.median(RAW_UNCONFIRMED))
    }
    return m


def _queue_name() -> str:
    return f"bench-rmq-{uuid.uuid4().hex[:8]}"


def _depth(conn: Any, queue: str) -> int:
    try:
        return int(conn.default_channel.queue_declare(queue, passive=True).message_count)
    except NotFound:
        conn.close()  # a refused passive declare closes the channel: start a new one
        return 0


def _delete(queue: str) -> None:
    with _kombu.Connection(RABBITMQ_URL, connect_timeout=5) as conn:
        conn.default_channel.queue_delete(queue)
        conn.default_channel.exchange_delete(queue)  # Celery's exchange of the queue


def _bridge(stack: Stack, deployment: Deployment, events: int) -> float:
    """`jobexec bridge` on a new group and queue; events/s from the first message seen."""
    stack.new_group(deployment)
    own = replace(deployment, queue=_queue_name())
    overrides = {
        "configs.celery.broker-url": RABBITMQ_URL,
        "configs.bridge.max-queue-depth": "100000000",
    }
    try:
        process = stack.bridge(own, overrides)
        assigned = time.perf_counter()
        first_at: float | None = None
        first_depth = 0
        deadline = assigned + 120 + events / 100
        with _kombu.Connection(RABBITMQ_URL, connect_timeout=5) as conn:
            while True:
                depth = _depth(conn, own.queue)
                now = time.perf_counter()
                if depth and first_at is None:
                    first_at, first_depth = now, depth
                if depth >= events:
                    break
                if now > deadline or not process.running():
                    raise RuntimeError(f"bridge published {depth} of {events}; {process.log_path}")
                time.sleep(0.005)
        stack.stop(process)
    finally:
        _delete(own.queue)
    assert first_at is not None
    if first_depth >= events:
        return events / max(now - assigned, 1e-3)
    return (events - first_depth) / (now - first_at)


def _message(n: int) -> tuple[str, dict[str, Any]]:
    """A body and headers shaped like Celery's protocol 2 `jobexec.execute_job` message."""
    task_id = str(uuid.uuid4())
    body = json.dumps([[], raw_kwargs(n), {"callbacks": None, "errbacks": None, "chain": None}])
    headers = {"lang": "py", "task": "jobexec.execute_job", "id": task_id, "root_id": task_id,
               "parent_id": None, "group": None, "retries": 0, "argsrepr": "()",
               "kwargsrepr": repr(raw_kwargs(n)), "origin": "bench"}  # fmt: skip
    return body, headers


def _publish(count: int, confirm: bool) -> float:
    """`count` persistent messages to a durable queue, one publish at a time; messages/s."""
    queue_name = _queue_name()
    exchange = _kombu.Exchange(queue_name, type="direct", durable=True)
    queue = _kombu.Queue(queue_name, exchange, routing_key=queue_name, durable=True)
    messages = [_message(n) for n in range(count)]
    options = {"confirm_publish": confirm}
    try:
        with _kombu.Connection(RABBITMQ_URL, connect_timeout=5, transport_options=options) as conn:
            producer = _kombu.Producer(
                conn.default_channel, exchange=exchange, routing_key=queue_name
            )
            queue.declare(channel=conn.default_channel)
            started = time.perf_counter()
            for body, headers in messages:
                producer.publish(
                    body,
                    headers=headers,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    retry=False,
                )
            wait_s = time.monotonic() + 30
            depth = _depth(conn, queue_name)
            while depth < count and time.monotonic() < wait_s:  # unconfirmed: still in flight
                time.sleep(0.01)
                depth = _depth(conn, queue_name)
            elapsed = time.perf_counter() - started  # until every message is in the queue
    finally:
        _delete(queue_name)
    if depth != count:
        raise RuntimeError(f"raw publish left {depth} of {count} messages in RabbitMQ")
    return count / elapsed
