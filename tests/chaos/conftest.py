"""Chaos scenarios: the real processes, real PostgreSQL, Redis and Kafka (Tansu), faults injected.

Every scenario drives a stream of `http` jobs at one endpoint of the HTTP recorder, which
records every call with its `X-Job-Id` header, so executions per job are counted at the
receiving end, not from the service's own logs. Each ends with the same invariants, from SQL
and from the recorded calls: every job in its expected final state, none RUNNING, executions
per run counted. Its figures are printed as one `CHAOS ...` line and, when
`JOBEXEC_CHAOS_REPORT` names a file, appended to it as a JSON line.

`JOBEXEC_CHAOS_SCALE` (default 1) multiplies the stream sizes, for a longer soak.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

from jobexec.core.db.browse import JobTally
from jobexec.core.db.engine import make_engine
from jobexec.core.db.store import JobStore
from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.http_recorder import HttpRecorder
from jobexec.testing.jobs import insert_rows, job_row
from jobexec.testing.kafka import EventProducer, KafkaTopics
from jobexec.testing.network import TcpProxy
from jobexec.testing.processes import Cli, RunningProcess, wait_ready, worker_args
from jobexec.testing.rabbitmq_queue import RabbitBroker
from jobexec.testing.redis_queue import RedisBroker
from jobexec.testing.redis_server import PrivateRedis
from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.waiting import wait_until
from tests.chaos.faults import TEST_APPLICATION_NAME, locate_messages

SCALE = float(os.environ.get("JOBEXEC_CHAOS_SCALE", "1") or "1")
REPORT = os.environ.get("JOBEXEC_CHAOS_REPORT")
EXEC_PATH = "/exec"  # every job of a scenario calls this path; X-Job-Id tells them apart
WORKER_CONCURRENCY = 4

# What every scenario runs with: fast group joins, frequent commits, fast retries.
CHAOS_SETTINGS = {
    "configs.bridge.commit-interval-ms": "200",
    "configs.retry.initial-backoff-ms": "100",
    "configs.retry.max-backoff-ms": "500",
    "configs.scheduler.max-sleep-ms": "200",
}
# Short leases, for the scenarios that kill a worker or deliver a task twice.
SHORT_LEASE = {"configs.lease.duration-ms": "4000", "configs.lease.heartbeat-ms": "1000"}

_DROPPED = re.compile(r"stale or duplicate event for job|duplicate dropped")
_DEFERRED = re.compile(r"held by a live lease")


def scaled(count: int) -> int:
    return max(1, round(count * SCALE))


def job_ids(prefix: str, count: int) -> list[str]:
    return [f"job_{prefix}_{n:05d}" for n in range(count)]


# --- the stream --------------------------------------------------------------------------------


class EventStream:
    """Produces records to the job-events topic from a thread, at a steady rate."""

    def __init__(
        self,
        kafka: KafkaTopics,
        records: Sequence[tuple[bytes | None, bytes | None]],
        per_second: float,
    ) -> None:
        self.kafka = kafka
        self.records = list(records)
        self.per_second = per_second
        self.sent = 0
        self.errors: list[str] = []
        self.finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-stream", daemon=True)

    def start(self) -> EventStream:
        self._thread.start()
        return self

    def wait_sent(self, fraction: float, timeout: float = 120.0) -> None:
        """Wait until this fraction of the records has been handed to the producer."""
        wanted = int(len(self.records) * fraction)
        wait_until(lambda: self.sent >= wanted or self.finished.is_set(), timeout, interval=0.05)

    def join(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)
        assert self.finished.is_set(), "the event stream did not finish"
        assert not self.errors, f"records not delivered: {self.errors[:5]}"

    def _run(self) -> None:
        producer = EventProducer(self.kafka.bootstrap, linger_ms=5)
        started = time.monotonic()
        try:
            for n, (key, value) in enumerate(self.records):
                producer.produce(self.kafka.topic, key, value)
                self.sent = n + 1
                # Sleep, not poll(timeout): poll returns early on every delivery report.
                pause = started + self.sent / self.per_second - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            producer.flush(60)
        except AssertionError as exc:
            self.errors.append(str(exc))
        finally:
            self.finished.set()


# --- figures -----------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one scenario measured; `lost` and `dup_exec` must be 0 for it to pass."""

    scenario: str
    events: int
    lost: int
    dup_exec: int
    recovery_s: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def emit(self) -> None:
        recovery = "none" if self.recovery_s is None else f"{self.recovery_s:.1f}"
        more = " ".join(f"{k}={v}" for k, v in self.extra.items() if not isinstance(v, list))
        print(
            f"\nCHAOS scenario={self.scenario} events={self.events} lost={self.lost} "
            f"dup_exec={self.dup_exec} recovery_s={recovery} {more}".rstrip(),
            flush=True,
        )
        if REPORT:
            line = {
                "scenario": self.scenario,
                "events": self.events,
                "lost": self.lost,
                "dup_exec": self.dup_exec,
                "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 2),
                "scale": SCALE,
                **self.extra,
            }
            with open(REPORT, "a") as report:
                report.write(json.dumps(line, default=str) + "\n")


# --- the stack ---------------------------------------------------------------------------------


class ChaosStack(Stack):
    """A Stack with several instances per process kind, bulk jobs and the chaos invariants."""

    def __init__(self, *args: Any, work_dir: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The test's own connections are named, so pg_terminate_backend leaves them alone.
        self.store.engine.dispose()
        self.store = JobStore(
            make_engine(
                make_url(self.pg_url), connect_args={"application_name": TEST_APPLICATION_NAME}
            )
        )
        self.tally = JobTally(self.store.engine)
        self.work_dir = work_dir
        self.db_proxy: TcpProxy | None = None
        self.broker_proxy: TcpProxy | None = None
        self.private_redis: PrivateRedis | None = None
        self._launched = 0

    # --- configuration ----------------------------------------------------------------------

    def use_db_proxy(self) -> TcpProxy:
        """Route the processes' database connections through a proxy the test can cut."""
        self.db_proxy = TcpProxy("127.0.0.1", 5432)
        self.db_proxy.start()
        return self.db_proxy

    def use_private_redis(self) -> PrivateRedis:
        """A Celery broker of this test alone, one that may be crashed and restarted."""
        self.private_redis = PrivateRedis(self.work_dir / "redis")
        self.private_redis.start()
        self.redis = RedisBroker(url=self.private_redis.url, queue=self.redis.queue)
        return self.private_redis

    def use_rabbitmq_proxy(self, rabbit: RabbitBroker) -> TcpProxy:
        """RabbitMQ as the Celery broker, its connections (the test's own too) through a proxy
        the test can cut: the shared server itself is never stopped."""
        self.broker_proxy = TcpProxy("127.0.0.1", 5672)
        self.broker_proxy.start()
        proxied = f"amqp://guest:guest@127.0.0.1:{self.broker_proxy.port}//"
        self.redis = RabbitBroker(url=proxied, queue=rabbit.queue)
        return self.broker_proxy

    def configure_chaos(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        settings = {**CHAOS_SETTINGS, **(overrides or {})}
        if self.db_proxy is not None:
            settings["configs.jobDb.url"] = (
                f"postgresql+psycopg://postgres@127.0.0.1:{self.db_proxy.port}/{self.db_name}"
            )
        return self.configure(overrides=settings)

    # --- processes --------------------------------------------------------------------------

    def launch(
        self, kind: str, concurrency: int = WORKER_CONCURRENCY, wait: bool = True
    ) -> RunningProcess:
        """Start one more `jobexec bridge|worker|scheduler`; named `<kind>-<n>`."""
        self._launched += 1
        name = f"{kind}-{self._launched}"
        args = worker_args(concurrency, hostname=f"{name}@%h") if kind == "worker" else [kind]
        process = self.cli.start(*args, env=self.env, name=name)
        self.processes[name] = process
        if wait:
            self.wait_ready(process)
        return process

    def wait_ready(self, process: RunningProcess, timeout: float = 60.0) -> None:
        wait_ready(process, self.kafka.topic, timeout)

    def running(self, kind: str) -> list[RunningProcess]:
        return [p for n, p in self.processes.items() if n.startswith(kind) and p.running()]

    def logs(self, kind: str) -> str:
        """The logs of every process of this kind started so far, killed ones included."""
        return "".join(p.log() for p in self.cli.processes if kind in p.argv)

    def worker_logs(self) -> str:
        return self.logs("worker")

    # --- jobs -------------------------------------------------------------------------------

    def insert_http_jobs(
        self, ids: Iterable[str], status: str = "RUNNING", **payload_fields: Any
    ) -> None:
        """One-time http jobs at EXEC_PATH; RUNNING with attempts 1 as the scheduler leaves
        them after dispatching, or SCHEDULED with attempts 0 for `jobexec scheduler`.
        `payload_fields` are added to each payload (`max_run_seconds=2`)."""
        payload = http_payload(self.http.url(EXEC_PATH), **payload_fields)
        attempts = 1 if status == "RUNNING" else 0
        rows = [job_row(job_id, payload, status=status, attempts=attempts) for job_id in ids]
        insert_rows(self.store, rows)

    def stream(
        self, records: Sequence[tuple[bytes | None, bytes | None]], per_second: float
    ) -> EventStream:
        return EventStream(self.kafka, records, per_second).start()

    def status_counts(self) -> Counter[str]:
        return Counter(self.tally.status_counts())

    def job_states(self) -> dict[str, tuple[str, int]]:
        return self.tally.job_states()

    def unfinished_runs(self) -> list[dict[str, Any]]:
        return self.tally.unfinished_runs()

    def wait_settled(self, expected_jobs: int, timeout: float) -> float | None:
        """Wait until every job exists and none is RUNNING; returns when (monotonic), or None."""
        deadline = time.monotonic() + timeout
        workerless_since: float | None = None
        while time.monotonic() < deadline:
            counts = self.status_counts()
            if sum(counts.values()) >= expected_jobs and counts["RUNNING"] == 0:
                return time.monotonic()
            # Every worker gone by itself: nothing will settle the rest, fail now.
            if self.running("worker"):
                workerless_since = None
            elif workerless_since is None:
                workerless_since = time.monotonic()
            elif time.monotonic() - workerless_since > 10:
                return None
            time.sleep(0.25)
        return None

    def calls_per_job(self) -> Counter[str]:
        return Counter(c.headers.get("X-Job-Id", "?") for c in self.http.calls(EXEC_PATH))

    def wait_quiet(self, seconds: float = 1.5, timeout: float = 30.0) -> None:
        """Let late duplicates show up: the queue empty and no new call for `seconds`."""
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            calls = len(self.http.calls(EXEC_PATH))
            try:
                depth = self.redis.depth()
            except Exception:
                depth = 0
            if calls == seen and depth == 0:
                return
            seen = calls
            time.sleep(seconds)

    # --- the verdict ------------------------------------------------------------------------

    def verdict(
        self,
        scenario: str,
        ids: Sequence[str],
        events: int,
        fault_at: float | None,
        settled_at: float | None,
        cut_off: Iterable[str] = (),
        expected_status: str = "COMPLETED",
        **extra: Any,
    ) -> Figures:
        """Measure the invariants, print and record the figures, then assert them."""
        self.wait_quiet()
        states = self.job_states()
        calls = self.calls_per_job()
        allowed_twice = set(cut_off)
        missing = [j for j in ids if j not in states]
        wrong = {j: states[j] for j in ids if j in states and states[j][0] != expected_status}
        running = [j for j, (status, _) in states.items() if status == "RUNNING"]
        lost = sorted(set(missing) | set(wrong))
        never_called = [j for j in ids if expected_status == "COMPLETED" and calls[j] == 0]
        duplicated = {j: n for j, n in calls.items() if n > 1 and j not in allowed_twice}
        over_twice = {j: calls[j] for j in allowed_twice if calls[j] > 2}
        strangers = sorted(set(calls) - set(ids))
        logs = self.worker_logs()
        crashes = re.findall(r"(?m)^.*Unrecoverable error.*$", logs)
        figures = Figures(
            scenario=scenario,
            events=events,
            lost=len(lost),
            dup_exec=sum(n - 1 for n in duplicated.values()),
            recovery_s=(
                None if fault_at is None or settled_at is None else max(0.0, settled_at - fault_at)
            ),
            extra={
                "jobs": len(ids),
                "executions": sum(calls[j] for j in ids),
                "cut_off_reexec": sum(max(0, calls[j] - 1) for j in allowed_twice),
                "dup_deliveries_dropped": len(_DROPPED.findall(logs)),
                "deferred_by_lease": len(_DEFERRED.findall(logs)),
                "workers_alive": len(self.running("worker")),
                "worker_crashes": len(crashes),
                **extra,
            },
        )
        figures.emit()
        if lost:
            print(f"lost jobs, where they are: {self.trace(lost[:5])}", flush=True)
        if crashes:  # name the cause first: a dead worker explains whatever follows
            print(f"worker crashed: {crashes[:3]}", flush=True)
        assert not missing, f"{len(missing)} jobs missing from the table: {missing[:10]}"
        assert not running, (
            f"{len(running)} jobs left RUNNING: {running[:10]}; "
            f"workers alive: {len(self.running('worker'))}; worker crashes: {crashes[:3]}"
        )
        assert not wrong, f"{len(wrong)} jobs not {expected_status}: {list(wrong.items())[:10]}"
        assert not never_called, f"{len(never_called)} jobs never executed: {never_called[:10]}"
        assert not duplicated, (
            f"{len(duplicated)} runs executed more than once: {list(duplicated.items())[:10]}"
        )
        assert not over_twice, f"cut-off runs executed more than twice: {over_twice}"
        assert not strangers, f"calls for unknown jobs: {strangers[:10]}"
        return figures

    def trace(self, ids: Sequence[str]) -> dict[str, Any]:
        """For a failure message: each job's row, its runs and where its messages are."""
        try:
            with self.redis.client() as client:
                messages = locate_messages(client, self.redis.queue, set(ids))
        except Exception as exc:
            messages = {j: [f"redis: {exc}"] for j in ids}
        return {
            j: {
                "row": self.job_states().get(j),
                "runs": [(r["attempt"], r["status"], r["worker"]) for r in self.store.runs(j)],
                "messages": messages.get(j),
                "calls": self.calls_per_job()[j],
            }
            for j in ids
        }

    def close(self) -> None:
        super().close()
        if self.private_redis is not None:
            self.private_redis.stop()
        if self.db_proxy is not None:
            self.db_proxy.stop()
        if self.broker_proxy is not None:
            self.broker_proxy.stop()


@pytest.fixture
def chaos(
    kafka: KafkaTopics,
    pg_url: str,
    redis_broker: RedisBroker,
    config_files: ConfigFiles,
    cli: Cli,
    http_recorder: HttpRecorder,
    tmp_path: Path,
) -> Iterator[ChaosStack]:
    built = ChaosStack(
        kafka, pg_url, redis_broker, config_files, cli, http_recorder, work_dir=tmp_path
    )
    try:
        yield built
    finally:
        built.close()
