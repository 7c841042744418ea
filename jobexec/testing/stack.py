"""One deployment of jobexec for one test: the real `jobexec` processes on their own topics,
database and Celery queue.

The settings are written to `application.properties` / `secrets.properties` the way an
operator writes them, the schema is created by `jobexec db upgrade` and the processes are
started by the `jobexec` script.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import make_url

from jobexec.core.db.engine import make_engine
from jobexec.core.db.store import JobStore
from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.http_recorder import HttpRecorder
from jobexec.testing.jobs import job_row
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.processes import Cli, RunningProcess, wait_ready, worker_args
from jobexec.testing.task_messages import CeleryBroker
from jobexec.testing.waiting import wait_until

# Retries fast enough for a test, still exponential.
FAST_RETRY = {
    "configs.retry.initial-backoff-ms": "100",
    "configs.retry.max-backoff-ms": "500",
}
# SIGTERM stops any jobexec process within 10 s (README, "Signals and exit status").
STOP_BOUND_S = 10.0


class Stack:
    """One deployment of jobexec for one test."""

    def __init__(
        self,
        kafka: KafkaTopics,
        pg_url: str,
        broker: CeleryBroker,
        config_files: ConfigFiles,
        cli: Cli,
        http: HttpRecorder,
    ) -> None:
        self.kafka = kafka
        self.pg_url = pg_url
        self.redis = broker  # the Celery broker: Redis unless the module parametrizes it
        self.config_files = config_files
        self.cli = cli
        self.http = http
        self.store = JobStore(make_engine(make_url(pg_url)))
        self.env: dict[str, str] = {}
        self.processes: dict[str, RunningProcess] = {}

    @property
    def db_name(self) -> str:
        name = make_url(self.pg_url).database
        assert name
        return name

    def configure(
        self, jdbc: bool = False, overrides: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Write the configuration files and run `jobexec db upgrade`; returns the env."""
        app: dict[str, str] = {
            **self.kafka.properties(),
            **self.redis.properties(),
            **FAST_RETRY,
            "configs.retry.max-attempts": "3",
            "configs.lease.duration-ms": "30000",
            "configs.lease.heartbeat-ms": "5000",
            "configs.scheduler.max-sleep-ms": "200",
        }
        secrets: dict[str, str] = {}
        if jdbc:
            # As the existing deployment does: JDBC URL without a database, user in secrets.
            app["configs.jobDb.url"] = "jdbc:postgresql://127.0.0.1:5432/"
            app["configs.jobDb.name"] = self.db_name
            secrets["secrets.datasource.username"] = "postgres"
            secrets["secrets.datasource.driver-class-name"] = "org.postgresql.Driver"
        else:
            app["configs.jobDb.url"] = self.pg_url
        app.update(overrides or {})
        self.env = self.config_files.write(app, secrets)
        upgraded = self.cli.run("db", "upgrade", env=self.env)
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        return self.env

    # --- processes --------------------------------------------------------------------------

    def start(self, *names: str, pool: str = "prefork", concurrency: int = 2) -> None:
        """Start `bridge`, `worker` and/or `scheduler`, then wait until each is ready.

        The worker runs `pool` (prefork, threads, gevent or solo) with `concurrency` slots.
        """
        for name in names:
            args = worker_args(concurrency, pool) if name == "worker" else [name]
            self.processes[name] = self.cli.start(*args, env=self.env, name=name)
        for name in names:
            wait_ready(self.processes[name], self.kafka.topic)

    def log(self, name: str) -> str:
        return self.processes[name].log()

    def wait_for_drop(self, job_id: str, times: int = 1, timeout: float = 30.0) -> None:
        """Wait until the worker logged `times` lines rejecting or dropping this job's events."""
        pattern = re.compile(
            r"(?im)^(?=.*" + re.escape(job_id) + r"\b)(?=.*\b(stale|not exist|missing|"
            r"rejected|dropped)\b).*$"
        )
        worker = self.processes["worker"]
        wait_until(
            lambda: len(pattern.findall(worker.log())) >= times,
            timeout,
            interval=0.2,
            message=lambda: f"worker did not log {times} drop(s) of {job_id}\n{worker.log()}",
        )

    def stop_all(self, names: tuple[str, ...] | None = None) -> dict[str, tuple[int, float]]:
        """SIGTERM the processes at once, then stop each in turn, which sends it a second
        SIGTERM (as an impatient operator does); returns name -> (exit status, seconds to exit).
        """
        chosen = names or tuple(self.processes)
        signalled = time.monotonic()
        for name in chosen:
            self.processes[name].send_signal(signal.SIGTERM)
        outcome: dict[str, tuple[int, float]] = {}
        for name in chosen:
            process = self.processes[name]
            left = max(0.1, signalled + STOP_BOUND_S + 5 - time.monotonic())
            code = process.stop(signal.SIGTERM, timeout=left)
            outcome[name] = (code, time.monotonic() - signalled)
        return outcome

    # --- jobs -------------------------------------------------------------------------------

    def insert(
        self,
        job_id: str,
        payload: Mapping[str, Any],
        *,
        status: str = "RUNNING",
        attempts: int = 1,
        job_type: str = "ONE_TIME",
        cron: str | None = None,
        next_run_at: datetime | None = None,
    ) -> None:
        """Insert a job row as the job API (and, for RUNNING rows, the scheduler) leaves it."""
        row = job_row(
            job_id,
            payload,
            status=status,
            attempts=attempts,
            job_type=job_type,
            cron=cron,
            next_run_at=next_run_at or datetime.now(UTC),
        )
        self.store.insert_jobs([row])

    def row(self, job_id: str) -> dict[str, Any]:
        row = self.store.job_row(job_id)
        assert row is not None, f"job {job_id} does not exist"
        return row

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until the job's row has one of these statuses; returns the row."""

        def reached() -> dict[str, Any] | None:
            row = self.row(job_id)
            return row if row["status"] in statuses else None

        found = wait_until(
            reached,
            timeout,
            interval=0.2,
            message=lambda: (
                f"job {job_id} never reached {statuses}: {self.store.job_row(job_id)}"
                f"\nruns: {self.store.runs(job_id)}"
            ),
        )
        assert found is not None
        return found

    def wait_runs(
        self, job_id: str, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        def ok() -> list[dict[str, Any]] | None:
            runs = self.store.runs(job_id)
            return runs if check(runs) else None

        found = wait_until(
            ok,
            timeout,
            interval=0.2,
            message=lambda: f"run history of {job_id}: {self.store.runs(job_id)}",
        )
        assert found is not None
        return found

    def close(self) -> None:
        """Stop what still runs after the test: SIGTERM to bridge and scheduler (they commit
        and leave the group), SIGKILL to the worker, whose graceful stop always waits out its
        7 s soft-shutdown window and has its own test; its queue is this test's alone."""
        running = [p for p in self.processes.values() if p.running()]
        for process in running:
            if "worker" in process.argv:
                process.kill()
            else:
                process.send_signal(signal.SIGTERM)
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(STOP_BOUND_S + 5)
        self.store.engine.dispose()


def http_payload(url: str, **more: Any) -> dict[str, Any]:
    return {"task": "http", "url": url, "method": "POST", "body": {"hello": "world"}, **more}


def db_now(stack: Stack) -> datetime:
    with stack.store.engine.connect() as conn:
        return stack.store.now(conn)
