"""1. Bridge throughput: JobEvents from a pre-filled topic into the Celery queue.

Held against the raw ceilings of its two halves, each run back to back with the bridge on the
same topic: a plain confluent-kafka consume-and-commit loop, and plain Celery publishes of
task messages of the same shape, one at a time and batched as the bridge batches them. Rates
count from the first record consumed (the first batch seen in Redis for the bridge), so process
start and the consumer-group join are left out. The raw loop is assigned its partitions (no
group join) and counts the same way; librdkafka prefetches in the background, so on a
pre-filled topic it mostly measures taking records out of that buffer: a ceiling indeed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

from celery import Celery
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench.profiles import Profile
from bench.raw_celery_app import RAW_TASK, create_app, raw_kwargs
from bench.results import Measurement, Target, ratio
from bench.stack import (
    REDIS_URL,
    Deployment,
    EventProducer,
    Stack,
    new_ids,
    queue_depth,
    tree_rss_mb,
)
from jobexec.testing.tansu import TEST_SESSION_TIMEOUT_MS

BATCH = 500  # the bridge's default configs.kafka.consumer.max-poll-records
BRIDGE = "jobexec bridge"
RAW_BATCHED = f"raw Celery publish, batched ({BATCH})"
RAW_SINGLE = "raw Celery publish, one at a time"
RAW_KAFKA = "raw confluent-kafka consume+commit"


def run(stack: Stack, profile: Profile) -> Measurement:
    m = Measurement("bridge_throughput", "1 bridge throughput")
    deployment = stack.deploy(partitions=3, database=False)
    events = profile.bridge_events
    producer = EventProducer(stack.bootstrap, linger_ms=5)
    producer.produce_events(deployment.topics.topic, new_ids("job_bridge_", events))
    producer.flush()
    raw_app = create_app(REDIS_URL)
    rss: list[dict[str, float]] = []
    for _ in range(profile.repetitions):
        rate, memory = _bridge(stack, deployment, events)
        m.figure(BRIDGE, "events/s").samples.append(rate)
        rss.append(memory)
        m.figure(RAW_BATCHED, "msgs/s").samples.append(_publish(stack, raw_app, events, BATCH))
        m.figure(RAW_SINGLE, "msgs/s").samples.append(
            _publish(stack, raw_app, profile.single_publishes, 1)
        )
        m.figure(RAW_KAFKA, "records/s").samples.append(_consume(stack, deployment, events))
    m.details = {"events": events, "partitions": 3, "batch": BATCH, "bridge_rss_mb": rss}
    m.targets.append(
        Target(
            "bridge >= 0.8 x raw batched Celery publish",
            ratio(m.median(BRIDGE), m.median(RAW_BATCHED)),
            ">=",
            0.8,
        )
    )
    m.details["ratios"] = {
        "bridge / raw kafka consume": ratio(m.median(BRIDGE), m.median(RAW_KAFKA)),
        "bridge / raw single publish": ratio(m.median(BRIDGE), m.median(RAW_SINGLE)),
    }
    return m


def _bridge(stack: Stack, deployment: Deployment, events: int) -> tuple[float, dict[str, float]]:
    """`jobexec bridge` on a new group and queue; events/s from the first batch in Redis."""
    stack.new_group(deployment)
    own = replace(deployment, queue=stack.new_queue())
    process = stack.bridge(own, {"configs.bridge.max-queue-depth": "100000000"})
    assigned = time.perf_counter()
    memory = {"ready": tree_rss_mb(process.pid)[0]}
    first_at: float | None = None
    first_depth = 0
    deadline = assigned + 120 + events / 500
    while True:
        depth = queue_depth(stack.redis, own.queue)
        now = time.perf_counter()
        if depth and first_at is None:
            first_at, first_depth = now, depth
            memory["first_batch"] = tree_rss_mb(process.pid)[0]
        if depth >= events:
            break
        if now > deadline or not process.running():
            raise RuntimeError(f"bridge enqueued {depth} of {events}; see {process.log_path}")
        time.sleep(0.002)
    memory["end"] = tree_rss_mb(process.pid)[0]
    stack.stop(process)
    stack.delete_queue(own.queue)
    assert first_at is not None
    if first_depth >= events:  # everything came in one batch (tiny runs)
        return events / max(now - assigned, 1e-3), memory
    return (events - first_depth) / (now - first_at), memory


def _publish(stack: Stack, app: Celery, count: int, batch: int) -> float:
    """Plain `send_task` of `count` messages, pipelined `batch` at a time; messages/s."""
    queue = stack.new_queue()
    started = time.perf_counter()
    if batch == 1:
        for n in range(count):
            app.send_task(RAW_TASK, kwargs=raw_kwargs(n), queue=queue, retry=False)
    else:
        for start in range(0, count, batch):
            with app.producer_or_acquire() as producer, producer.batch(max_size=batch):
                for n in range(start, min(count, start + batch)):
                    app.send_task(
                        RAW_TASK, kwargs=raw_kwargs(n), queue=queue, producer=producer, retry=False
                    )
    elapsed = time.perf_counter() - started
    depth = queue_depth(stack.redis, queue)
    stack.delete_queue(queue)
    if depth != count:
        raise RuntimeError(f"raw publish left {depth} of {count} messages in Redis")
    return count / elapsed


def _consume(stack: Stack, deployment: Deployment, events: int) -> float:
    """A plain consume loop with the bridge's consumer settings, storing offsets per batch."""
    topic = deployment.topics.topic
    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": TEST_SESSION_TIMEOUT_MS,
            "enable.auto.commit": True,
            "auto.commit.interval.ms": 1000,
            "enable.auto.offset.store": False,
        }
    )
    # Assigned, not subscribed: a group join is start-up, which no rate here counts anyway.
    consumer.assign(
        [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(deployment.topics.partitions)]
    )
    count = 0
    first_at: float | None = None
    first_batch = 0
    first_call = 0.0
    deadline = time.monotonic() + 120 + events / 500
    try:
        while count < events:
            if time.monotonic() > deadline:
                raise RuntimeError(f"raw consumer read {count} of {events} records")
            called = time.perf_counter()
            messages = consumer.consume(BATCH, timeout=0.5)
            highest: dict[int, int] = {}
            for message in messages:
                if message.error() is None:
                    count += 1
                    highest[message.partition() or 0] = message.offset() or 0
            if not highest:
                continue
            if first_at is None:
                first_at, first_batch, first_call = time.perf_counter(), count, called
            consumer.store_offsets(
                offsets=[TopicPartition(topic, p, o + 1) for p, o in highest.items()]
            )
        finished = time.perf_counter()
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert first_at is not None
    if first_batch >= events:  # everything came in one batch (tiny runs)
        return events / max(finished - first_call, 1e-3)
    return (events - first_batch) / (finished - first_at)
