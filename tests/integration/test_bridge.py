"""The bridge against real Tansu and a real broker: every JobEvent becomes one Celery task, poison
goes to the dead-letter topic, and an offset is committed only behind what the broker accepted
(contract 4, 10). Each test runs on Redis and on RabbitMQ.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import make_url

from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.store import JobStore
from jobexec.core.taskmessage import TASK_NAME
from jobexec.testing.kafka import (
    EventProducer,
    KafkaTopics,
    committed_offsets,
    end_offsets,
    read_records,
)
from jobexec.testing.network import TcpProxy
from jobexec.testing.rabbitmq_queue import RABBITMQ_URL, RabbitBroker
from jobexec.testing.redis_queue import RedisBroker
from jobexec.testing.redis_server import PrivateRedis
from jobexec.testing.task_messages import CeleryBroker
from jobexec.testing.waiting import wait_until
from tests.integration.bridge_support import RunningBridge, environment, job_ids, new_job_ids

BridgeFactory = Callable[..., RunningBridge]

pytestmark = pytest.mark.parametrize("celery_broker", ["redis", "rabbitmq"], indirect=True)


@pytest.fixture
def start_bridge(kafka: KafkaTopics, celery_broker: CeleryBroker) -> Iterator[BridgeFactory]:
    """`start_bridge(**overrides)`: a running bridge on this test's topics and queue.

    Overrides are property keys, e.g. `{"configs.bridge.max-queue-depth": "20"}`.
    """
    started: list[RunningBridge] = []

    def start(overrides: dict[str, str] | None = None) -> RunningBridge:
        environ = environment(kafka.properties(), celery_broker.properties(), overrides or {})
        bridge = RunningBridge(environ).start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop_quietly()


@dataclass
class BrokerOutage:
    """A broker the test can take away: `.url` is what the bridge uses, `.queue` reads it."""

    url: str
    queue: CeleryBroker
    stop: Callable[[], None]
    start: Callable[[], None]


@pytest.fixture
def broker_outage(celery_broker: CeleryBroker) -> Iterator[BrokerOutage]:
    """Redis: a private redis-server, restarted empty. RabbitMQ: a TCP proxy to the shared one
    (the machine's server is never stopped), its messages kept across the outage."""
    if isinstance(celery_broker, RabbitBroker):
        proxy = TcpProxy("127.0.0.1", 5672)
        proxy.start()
        url = RABBITMQ_URL.replace(":5672/", f":{proxy.port}/")
        try:
            yield BrokerOutage(url, celery_broker, proxy.stop, proxy.start)
        finally:
            proxy.stop()
        return
    server = PrivateRedis()
    server.start()
    try:
        reader = RedisBroker(url=server.url, queue=celery_broker.queue)
        yield BrokerOutage(server.url, reader, server.stop, server.start)
    finally:
        server.stop()


def _committed(kafka: KafkaTopics) -> list[int]:
    return committed_offsets(kafka.bootstrap, kafka.group_id, kafka.topic, kafka.partitions)


def _ends(kafka: KafkaTopics, records: int) -> list[int]:
    return end_offsets(kafka.bootstrap, kafka.topic, kafka.partitions, records)


def _instant(iso: str | None) -> datetime:
    assert iso is not None
    parsed = datetime.fromisoformat(iso)
    assert parsed.tzinfo is not None, f"scheduled_at {iso!r} has no time zone"
    return parsed


# --- 1. the happy path -------------------------------------------------------------------------


def test_given_good_job_events_when_bridged_then_one_task_each_and_offsets_committed_to_the_end(
    kafka: KafkaTopics, celery_broker: CeleryBroker, start_bridge: BridgeFactory
) -> None:
    # Given 300 JobEvents over 3 partitions, scheduledAt in each of the three accepted forms
    base = 1764380000.25
    forms: list[Callable[[int], object]] = [
        lambda i: datetime.fromtimestamp(base + i, UTC).isoformat().replace("+00:00", "Z"),
        lambda i: base + i,
        lambda i: int((base + i) * 1000),
    ]
    ids = new_job_ids(300)
    producer = EventProducer(kafka.bootstrap)
    for i, job_id in enumerate(ids):
        event = {"jobId": job_id, "attempt": 1 + i % 3, "scheduledAt": forms[i % 3](i)}
        producer.produce(kafka.topic, job_id.encode(), json.dumps(event).encode())
    producer.flush()
    ends = _ends(kafka, 300)
    assert all(end > 0 for end in ends), f"every partition should hold events: {ends}"

    # When the bridge runs until they are all enqueued, then stops
    bridge = start_bridge()
    wait_until(
        lambda: celery_broker.depth() >= 300,
        45,
        message=lambda: f"queue depth {celery_broker.depth()} of 300",
    )
    time.sleep(1.0)  # a straggler duplicate would show up here
    took = bridge.stop()
    tasks = celery_broker.tasks()

    # Then exactly one task per event, persistent, with the event's fields as kwargs
    assert len(tasks) == 300
    assert all(task.persistent for task in tasks)
    assert sorted(job_ids(tasks)) == sorted(ids)
    origins = set()
    for task in tasks:
        i = ids.index(task.job_id)
        assert task.task == TASK_NAME
        assert task.args == []
        assert task.kwargs["attempt"] == 1 + i % 3
        assert abs((_instant(task.kwargs["scheduled_at"]).timestamp()) - (base + i)) < 0.002
        origin = task.kwargs["origin"]
        assert origin["topic"] == kafka.topic
        origins.add((origin["partition"], origin["offset"]))
    assert origins == {(p, o) for p, end in enumerate(ends) for o in range(end)}
    assert bridge.bridge.stats.enqueued == 300
    assert bridge.bridge.stats.dead_lettered == 0
    # And the group's committed offsets are the end of every partition
    assert _committed(kafka) == ends
    assert took < 10, f"a clean stop took {took:.1f}s"
    assert read_records(kafka.bootstrap, kafka.dlt, expected=1, timeout=1) == []


# --- 2. poison records -------------------------------------------------------------------------

POISON: list[tuple[str, bytes | None, bytes | None]] = [
    ("bad-json", b"poison-bad-json", b'{"jobId": "job_x", "attempt": '),
    ("json-array", b"poison-array", b'["job_x", 1]'),
    ("missing-jobId", b"poison-no-id", b'{"attempt": 1, "scheduledAt": 1764380000}'),
    ("attempt-x", b"poison-attempt", b'{"jobId": "job_x", "attempt": "x"}'),
    ("not-utf8", b"poison-utf8", b'{"jobId": "job_\xff\xfe"}'),
    ("null-value", b"poison-null", None),
    ("null-key", None, b"not json at all"),
]


def test_given_poison_records_between_good_ones_then_each_is_dead_lettered_unchanged(
    kafka: KafkaTopics, celery_broker: CeleryBroker, start_bridge: BridgeFactory
) -> None:
    # Given each kind of poison record between good events that carry unknown fields and headers
    producer = EventProducer(kafka.bootstrap)
    good: list[str] = []
    for _name, key, value in POISON:
        for job_id in new_job_ids(3, prefix="job_good"):
            good.append(job_id)
            event = {
                "jobId": job_id,
                "attempt": 2,
                "scheduledAt": "2025-11-29T01:33:20.5+00:00",
                "unknownField": {"nested": [1, 2]},
                "priority": "high",
            }
            headers = [("traceparent", b"00-abc-def-01"), ("__TypeId__", b"com.example.Job")]
            producer.produce(kafka.topic, job_id.encode(), json.dumps(event).encode(), headers)
        producer.produce(kafka.topic, key, value, [("origin", b"test")])
    producer.flush()
    ends = _ends(kafka, len(good) + len(POISON))
    originals = read_records(kafka.bootstrap, kafka.topic, expected=sum(ends), timeout=10)
    assert len(originals) == len(good) + len(POISON)

    # When the bridge has handled all of them
    bridge = start_bridge()
    wait_until(
        lambda: (
            celery_broker.depth() >= len(good) and bridge.bridge.stats.dead_lettered >= len(POISON)
        ),
        45,
        message=lambda: f"depth {celery_broker.depth()}, stats {bridge.bridge.stats}",
    )
    bridge.stop()
    tasks = celery_broker.tasks()

    # Then every good record is enqueued once, its unknown fields and headers ignored
    assert sorted(job_ids(tasks)) == sorted(good)
    for task in tasks:
        assert task.kwargs["attempt"] == 2
        assert _instant(task.kwargs["scheduled_at"]) == datetime(
            2025, 11, 29, 1, 33, 20, 500000, tzinfo=UTC
        )
    # And every poison record is on the dead-letter topic, key and value unchanged, with headers
    # that point back at the original record
    letters = read_records(kafka.bootstrap, kafka.dlt, expected=len(POISON) + 1, timeout=5)
    assert len(letters) == len(POISON), [(r.key, r.value) for r in letters]
    for name, key, value in POISON:
        original = next(r for r in originals if r.key == key and r.value == value)
        matching = [r for r in letters if r.key == key and r.value == value]
        assert len(matching) == 1, f"{name}: {len(matching)} dead letters with its key and value"
        dlt_headers = matching[0].headers
        assert dlt_headers.get("kafka_dlt-exception-fqcn"), f"{name}: no exception class"
        assert dlt_headers.get("kafka_dlt-exception-message"), f"{name}: no exception message"
        assert dlt_headers.get("kafka_dlt-original-topic") == kafka.topic.encode(), name
        assert dlt_headers.get("kafka_dlt-original-partition") == str(original.partition).encode()
        assert dlt_headers.get("kafka_dlt-original-offset") == str(original.offset).encode()
    # And the offsets are committed past all of them
    assert _committed(kafka) == ends


# --- 3. broker outage --------------------------------------------------------------------------


def test_given_the_broker_goes_down_then_nothing_is_committed_past_the_queue_and_nothing_is_lost(
    kafka: KafkaTopics, broker_outage: BrokerOutage, start_bridge: BridgeFactory
) -> None:
    queue = broker_outage.queue
    overrides = {
        "configs.celery.broker-url": broker_outage.url,
        "configs.bridge.commit-interval-ms": "200",
    }
    producer = EventProducer(kafka.bootstrap)
    before = new_job_ids(60, prefix="job_before")
    during = new_job_ids(60, prefix="job_during")

    # Given a bridge that enqueued and committed a first batch
    bridge = start_bridge(overrides)
    bridge.wait_assigned()
    producer.produce_events(kafka.topic, before)
    producer.flush()
    wait_until(lambda: queue.depth() >= len(before), 30, message="first batch")
    seen_before = job_ids(queue.drain())
    assert sorted(seen_before) == sorted(before)
    first_ends = _ends(kafka, len(before))
    wait_until(lambda: _committed(kafka) == first_ends, 15, message="first batch not committed")

    # When the broker goes away and more events arrive
    broker_outage.stop()
    producer.produce_events(kafka.topic, during)
    producer.flush()

    # Then the bridge pauses, keeps its partitions, and commits nothing it could not enqueue
    wait_until(
        lambda: bridge.bridge.stats.paused,
        20,
        message=lambda: f"the bridge did not pause: {bridge.bridge.stats}",
    )
    assert bridge.bridge.stats.consumed > len(before), "the second batch was never polled"
    for _ in range(4):
        assert bridge.alive(), "the bridge thread died during the outage"
        assert bridge.assignment(), "the bridge lost its partitions during the outage"
        assert _committed(kafka) == first_ends, "offsets committed while the broker was down"
        time.sleep(1.0)
    assert bridge.bridge.stats.enqueued == len(before)

    # When the broker is back on the same port
    broker_outage.start()

    # Then every event of the outage is enqueued, and the offsets reach the end
    wait_until(
        lambda: set(during) <= set(job_ids(queue.tasks())),
        40,
        message=lambda: (
            f"after the outage: {queue.depth()} of {len(during)} tasks, stats {bridge.bridge.stats}"
        ),
    )
    all_ends = _ends(kafka, len(before) + len(during))
    wait_until(lambda: _committed(kafka) == all_ends, 15, message="not committed")
    assert not bridge.bridge.stats.paused
    bridge.stop()
    seen_after = job_ids(queue.tasks())
    union = Counter(seen_before) + Counter(seen_after)
    assert set(union) == set(before) | set(during), "events lost to the outage"
    assert sum(union.values()) >= len(before) + len(during)


# --- 4. backpressure ---------------------------------------------------------------------------


def test_given_a_full_queue_then_the_bridge_pauses_near_the_limit_and_resumes_below_half(
    kafka: KafkaTopics, celery_broker: CeleryBroker, start_bridge: BridgeFactory
) -> None:
    limit, batch = 20, 10
    ids = new_job_ids(200)
    producer = EventProducer(kafka.bootstrap)
    producer.produce_events(kafka.topic, ids)
    producer.flush()

    # Given a bridge whose queue nobody drains
    bridge = start_bridge(
        {
            "configs.bridge.max-queue-depth": str(limit),
            "configs.kafka.consumer.max-poll-records": str(batch),
        }
    )
    # Then the queue stops growing near the limit and the bridge says it is paused
    wait_until(
        lambda: bridge.bridge.stats.paused,
        30,
        message=lambda: f"never paused; depth {celery_broker.depth()}",
    )
    time.sleep(2.0)
    depth = celery_broker.depth()
    assert depth <= limit + batch, f"queue grew to {depth} with max-queue-depth {limit}"
    assert bridge.bridge.stats.enqueued <= limit + batch
    assert bridge.bridge.stats.paused
    time.sleep(1.0)
    assert celery_broker.depth() == depth, "paused, yet still enqueueing"
    # And the depth it paused on is exported for dashboards, per queue
    exported = REGISTRY.get_sample_value(
        "jobexec_bridge_queue_depth", {"queue": celery_broker.queue}
    )
    assert exported is not None and limit < exported <= limit + batch, exported

    # When a worker drains the queue below half, again and again
    drained: list[str] = []

    def drained_all() -> bool:
        if celery_broker.depth() > limit + batch:
            raise AssertionError("queue beyond the limit after a resume")
        drained.extend(job_ids(celery_broker.drain()))
        return len(drained) >= len(ids)

    # Then the bridge resumes each time and eventually enqueues all 200, each once
    wait_until(
        drained_all,
        50,
        interval=0.3,
        message=lambda: f"{len(drained)} of {len(ids)} enqueued; {bridge.bridge.stats}",
    )
    bridge.stop()
    drained.extend(job_ids(celery_broker.drain()))
    assert sorted(drained) == sorted(ids)
    assert _committed(kafka) == _ends(kafka, len(ids))


# --- 5. clean stop mid-stream ------------------------------------------------------------------


def test_given_a_stop_mid_stream_then_a_second_bridge_carries_on_without_gaps_or_duplicates(
    kafka: KafkaTopics, celery_broker: CeleryBroker, start_bridge: BridgeFactory
) -> None:
    total = 400
    ids = new_job_ids(total)
    overrides = {"configs.kafka.consumer.max-poll-records": "10"}
    producing_done = threading.Event()
    produce_errors: list[BaseException] = []

    def produce_slowly() -> None:
        try:
            producer = EventProducer(kafka.bootstrap)
            for start in range(0, total, 10):
                producer.produce_events(kafka.topic, ids[start : start + 10])
                producer.flush()
                time.sleep(0.05)
        except BaseException as exc:
            produce_errors.append(exc)
        finally:
            producing_done.set()

    # Given a bridge consuming a stream of events as they are produced
    first = start_bridge(overrides)
    first.wait_assigned()
    feeder = threading.Thread(target=produce_slowly, daemon=True)
    feeder.start()
    wait_until(
        lambda: first.bridge.stats.enqueued >= 60,
        30,
        interval=0.02,
        message=lambda: f"first bridge: {first.bridge.stats}",
    )

    # When it is stopped mid-stream, as SIGTERM does, and a second bridge joins the group
    took = first.stop()
    assert took < 10, f"stopping took {took:.1f}s"
    assert not producing_done.is_set(), "the stop was not mid-stream: produce more slowly"
    second = start_bridge(overrides)
    feeder.join(60)
    assert not produce_errors, produce_errors

    # Then the two together enqueued every event exactly once
    wait_until(
        lambda: celery_broker.depth() >= total,
        45,
        message=lambda: f"{celery_broker.depth()} of {total}; second bridge {second.bridge.stats}",
    )
    time.sleep(1.0)  # let a duplicate, if any, arrive
    second.stop()
    tasks = celery_broker.tasks()
    counts = Counter(job_ids(tasks))
    assert set(counts) == set(ids), f"missing: {len(set(ids) - set(counts))}"
    duplicates = {job_id: n for job_id, n in counts.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} events enqueued twice after a clean stop"
    assert first.bridge.stats.enqueued + second.bridge.stats.enqueued == total
    assert _committed(kafka) == _ends(kafka, total)


# --- 6. hostile records and a dead-letter topic that refuses or is missing (contract 9a) --------

ONE_MEGABYTE = 1_000_000


def _garbage(size: int) -> bytes:
    # Not UTF-8 from the first byte on, so it is poison whatever follows.
    return b"\xff" + b"g" * (size - 1)


def _handed_over(bridge: RunningBridge, broker: CeleryBroker, tasks: int, letters: int) -> bool:
    return broker.depth() >= tasks and bridge.bridge.stats.dead_lettered >= letters


@pytest.mark.parametrize("kafka", [1], indirect=True)
def test_given_a_one_megabyte_poison_record_then_it_is_dead_lettered_whole_with_default_settings(
    kafka: KafkaTopics, celery_broker: CeleryBroker, start_bridge: BridgeFactory
) -> None:
    # Given a 1,000,000-byte garbage record between good events (librdkafka's own default
    # message.max.bytes, 1,000,000, refused it once the dead-letter headers were added)
    before, after = new_job_ids(2, prefix="job_before"), new_job_ids(2, prefix="job_after")
    big = _garbage(ONE_MEGABYTE)
    producer = EventProducer(kafka.bootstrap)
    producer.produce_events(kafka.topic, before)
    producer.produce(kafka.topic, b"big", big)
    producer.produce_events(kafka.topic, after)
    producer.flush()

    # When a bridge with the default settings reads them
    bridge = start_bridge()
    wait_until(
        lambda: _handed_over(bridge, celery_broker, 4, 1),
        45,
        message=lambda: f"stats {bridge.bridge.stats}",
    )
    time.sleep(1.0)  # a re-sent task or letter would show up here
    assert not bridge.bridge.stats.paused
    bridge.stop()
    tasks = celery_broker.tasks()

    # Then the record is on the dead-letter topic with its whole value, once
    letters = read_records(kafka.bootstrap, kafka.dlt, expected=2, timeout=5)
    assert [(r.key, r.value) for r in letters] == [(b"big", big)]
    assert "jobexec-dlt-original-size" not in letters[0].headers
    # And the good events around it are enqueued once each, the offsets committed past all
    assert sorted(job_ids(tasks)) == sorted(before + after)
    assert _committed(kafka) == _ends(kafka, 5)


@pytest.mark.parametrize("kafka", [1], indirect=True)
def test_given_the_dead_letter_topic_refuses_a_record_mid_batch_then_a_stand_in_and_no_resend(
    kafka: KafkaTopics, celery_broker: CeleryBroker, start_bridge: BridgeFactory
) -> None:
    # Given a dead-letter topic that takes no record over 200,000 bytes (an operator's
    # message.max.bytes; Tansu itself enforces no limit) and one batch of: good events, a
    # tombstone, a 300,000-byte poison record, a small poison record, good events
    first, last = new_job_ids(3, prefix="job_first"), new_job_ids(3, prefix="job_last")
    big = _garbage(300_000)
    producer = EventProducer(kafka.bootstrap)
    producer.produce_events(kafka.topic, first)
    producer.produce(kafka.topic, b"tombstone", None)
    producer.produce(kafka.topic, b"too-big", big, [("origin", b"test")])
    producer.produce(kafka.topic, b"small", b"{not json")
    producer.produce_events(kafka.topic, last)
    producer.flush()
    originals = {r.key: r for r in read_records(kafka.bootstrap, kafka.topic, 9, timeout=10)}

    # When the bridge hands the batch over
    bridge = start_bridge(
        {
            "configs.kafka.properties.message.max.bytes": "200000",
            "configs.kafka.consumer.max-poll-records": "50",
        }
    )
    wait_until(
        lambda: _handed_over(bridge, celery_broker, 6, 3),
        45,
        message=lambda: f"stats {bridge.bridge.stats}",
    )
    time.sleep(2.0)  # a re-sent task or letter would show up here
    assert not bridge.bridge.stats.paused, "a refused record was taken for an outage"
    bridge.stop()
    tasks = celery_broker.tasks()

    # Then each poison record is on the dead-letter topic once, the big one as a stand-in:
    # its key and headers, no value, its original size
    letters = read_records(kafka.bootstrap, kafka.dlt, expected=4, timeout=5)
    assert sorted(r.key or b"" for r in letters) == [b"small", b"tombstone", b"too-big"], letters
    stand_in = next(r for r in letters if r.key == b"too-big")
    assert stand_in.value is None
    assert stand_in.headers["jobexec-dlt-original-size"] == b"300000"
    assert (
        stand_in.headers["kafka_dlt-original-offset"] == str(originals[b"too-big"].offset).encode()
    )
    assert stand_in.headers["kafka_dlt-original-topic"] == kafka.topic.encode()
    assert stand_in.headers["kafka_dlt-exception-fqcn"] == b"jobexec.events.PoisonRecord"
    assert b"300000 bytes dropped" in stand_in.headers["kafka_dlt-exception-message"]
    small = next(r for r in letters if r.key == b"small")
    assert small.value == b"{not json"
    assert "jobexec-dlt-original-size" not in small.headers
    # And every good event is enqueued exactly once, the offsets committed to the end
    assert sorted(job_ids(tasks)) == sorted(first + last)
    assert bridge.bridge.stats.enqueued == 6
    assert _committed(kafka) == _ends(kafka, 9)


# --- 7. routes ---------------------------------------------------------------------------------


@pytest.fixture
def mail_queue(celery_broker: CeleryBroker) -> Iterator[CeleryBroker]:
    """A second queue on the test's broker, for the runs routed away from the default."""
    other = replace(celery_broker, queue=f"{celery_broker.queue}-mail")  # type: ignore[type-var]
    try:
        yield other
    finally:
        other.cleanup()


def test_given_routes_then_runs_go_to_their_tasks_queue_by_header_or_by_one_job_table_read(
    kafka: KafkaTopics,
    celery_broker: CeleryBroker,
    mail_queue: CeleryBroker,
    pg_url: str,
    start_bridge: BridgeFactory,
) -> None:
    # Given jobs in the job table, and a route for send_email
    engine = make_engine(make_url(pg_url))
    upgrade(engine)
    store = JobStore(engine)
    rows = {"job_mail_db": "send_email", "job_http_db": "http"}
    store.insert_jobs(
        [
            {"job_id": j, "job_type": "ONE_TIME", "payload": {"task": t}, "status": "RUNNING"}
            for j, t in rows.items()
        ]
    )
    engine.dispose()
    # And events with the jobexec-task header, without it, and for a job the table lacks
    producer = EventProducer(kafka.bootstrap)
    events = {
        "job_mail_header": b"send_email",
        "job_http_header": b"http",
        "job_mail_db": None,
        "job_http_db": None,
        "job_not_in_table": None,
    }
    for job_id, task in events.items():
        value = json.dumps({"jobId": job_id, "attempt": 1}).encode()
        headers = [("jobexec-task", task)] if task is not None else []
        producer.produce(kafka.topic, job_id.encode(), value, headers)
    producer.flush()

    # When the bridge runs with the route and the job database
    bridge = start_bridge(
        {"configs.celery.routes.send_email": mail_queue.queue, "configs.jobDb.url": pg_url}
    )
    wait_until(
        lambda: celery_broker.depth() + mail_queue.depth() >= len(events),
        30,
        message=lambda: f"{celery_broker.depth()} + {mail_queue.depth()} of {len(events)}",
    )
    bridge.stop()

    # Then send_email runs are on their queue, every other run on the default one
    assert sorted(job_ids(mail_queue.tasks())) == ["job_mail_db", "job_mail_header"]
    assert sorted(job_ids(celery_broker.tasks())) == [
        "job_http_db",
        "job_http_header",
        "job_not_in_table",
    ]
    assert _committed(kafka) == _ends(kafka, len(events))


def test_given_routes_then_backpressure_pauses_on_a_full_routed_queue(
    kafka: KafkaTopics,
    celery_broker: CeleryBroker,
    mail_queue: CeleryBroker,
    start_bridge: BridgeFactory,
) -> None:
    limit, batch = 20, 10
    # Given 100 send_email events (by header) and a route that sends them to their own queue
    producer = EventProducer(kafka.bootstrap)
    for job_id in new_job_ids(100, prefix="job_mail"):
        value = json.dumps({"jobId": job_id, "attempt": 1}).encode()
        producer.produce(kafka.topic, job_id.encode(), value, [("jobexec-task", b"send_email")])
    producer.flush()

    # When the bridge runs and nobody drains the routed queue
    bridge = start_bridge(
        {
            "configs.celery.routes.send_email": mail_queue.queue,
            "configs.bridge.max-queue-depth": str(limit),
            "configs.kafka.consumer.max-poll-records": str(batch),
        }
    )

    # Then it pauses near the limit, though the default queue is empty
    wait_until(
        lambda: bridge.bridge.stats.paused,
        30,
        message=lambda: f"never paused; routed queue holds {mail_queue.depth()}",
    )
    time.sleep(1.0)
    depth = mail_queue.depth()
    assert depth <= limit + batch, f"routed queue grew to {depth} with max-queue-depth {limit}"
    assert celery_broker.depth() == 0
    assert bridge.bridge.stats.paused
    bridge.stop()
