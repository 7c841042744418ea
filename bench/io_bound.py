"""I/O-bound jobs: `http` jobs against an endpoint that answers after 50 ms, pool by pool.

A local endpoint (`bench.slow_endpoint`, its own process) answers every call after 50 ms.
jobexec runs `http` jobs (rows inserted, JobEvents on Kafka, one bridge, `jobexec worker`) in
`--pool prefork -c 2`, `threads` and `gevent` at each concurrency of the profile. Beside the
compared pools run (a) a plain Celery task making the same httpx call in the same pool
(`bench.raw_http_app`) and (b) a plain confluent-kafka consumer with a thread pool that calls
and commits (`bench.plain_consumer`); their repetitions alternate with jobexec's. Each
repetition offers a burst of N jobs at once (N scales with the concurrency, as 50 ms calls of
`io_seconds` ideal duration, capped); the rate is N over the time from the burst's start to
the last job's end (jobexec: COMPLETED in `jobs.updated_at`; the others: their last report).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise

from celery import Celery

from bench.profiles import Profile
from bench.raw_celery_app import BROKER_ENV, create_app
from bench.raw_http_app import RAW_HTTP_TASK
from bench.results import Measurement, Target, ratio
from bench.stack import (
    REDIS_URL,
    REPO,
    Deployment,
    EventProducer,
    Stack,
    finish_times,
    finished_count,
    insert_jobs,
    new_ids,
    status_count,
    wait_for,
)
from jobexec.core.ports import free_port
from jobexec.testing.config_files import clean_environment
from jobexec.testing.processes import RunningProcess, wait_ready, worker_args

DELAY_S = 0.05
PREFORK = ("prefork", 2)
BODY = {"job": "io"}
MIN_JOBS = 20


@dataclass(frozen=True)
class Setup:
    pool: str
    concurrency: int
    raw: bool  # a raw Celery worker of the same pool runs beside it
    plain: bool  # a plain consumer with `concurrency` threads runs beside it

    @property
    def label(self) -> str:
        return f"jobexec http, {self.pool} -c {self.concurrency}"


def raw_label(pool: str, concurrency: int) -> str:
    return f"raw Celery httpx task, {pool} -c {concurrency}"


def plain_label(threads: int) -> str:
    return f"plain consumer + {threads} threads"


def setups(profile: Profile) -> list[Setup]:
    """prefork -c 2, then threads and gevent at every level; the compared ones flagged."""
    out = [Setup(*PREFORK, raw=True, plain=False)]
    threads = sorted({*profile.io_levels, profile.io_threads})
    green = sorted({*profile.io_levels, profile.io_gevent})
    out += [Setup("threads", c, c == profile.io_threads, c == profile.io_threads) for c in threads]
    plain_green = profile.io_gevent != profile.io_threads
    out += [
        Setup("gevent", c, c == profile.io_gevent, plain_green and c == profile.io_gevent)
        for c in green
    ]
    return out


def burst(profile: Profile, concurrency: int) -> int:
    ideal = int(concurrency / DELAY_S * profile.io_seconds)
    return max(MIN_JOBS, min(profile.io_max_jobs, ideal))


class Endpoint:
    """`bench.slow_endpoint` in its own process on a free loopback port."""

    def __init__(self, stack: Stack) -> None:
        self.port = free_port()
        env = clean_environment()
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
        argv = [sys.executable, "-m", "bench.slow_endpoint", "--port", str(self.port)]
        argv += ["--delay-ms", f"{DELAY_S * 1000:g}"]
        self.process = stack.cli.spawn(argv, env=env, name="slow-endpoint")
        self.process.wait_for_log(r"listening on", timeout=30)
        self.url = f"http://127.0.0.1:{self.port}/hook"


def jobexec_worker(stack: Stack, deployment: Deployment, setup: Setup, port: int) -> RunningProcess:
    args = worker_args(setup.concurrency, setup.pool, hostname=f"io-{uuid.uuid4().hex[:6]}@%h")
    # The allow-list names the endpoint, as a deployment that limits outbound calls would.
    env = deployment.environment({"configs.executors.http.allowed-hosts": f"127.0.0.1:{port}"})
    return stack.cli.start(*args, env=env, name=f"io-worker-{setup.pool}-c{setup.concurrency}")


def raw_worker(stack: Stack, queue: str, pool: str, concurrency: int) -> RunningProcess:
    env = clean_environment()
    env.update({BROKER_ENV: REDIS_URL, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
    argv = [sys.executable, "-m", "celery", "-A", "bench.raw_http_app", "worker"]
    argv += ["--queues", queue, "--pool", pool, "--concurrency", str(concurrency)]
    argv += ["--loglevel", "INFO", "--hostname", f"rawio-{uuid.uuid4().hex[:6]}@%h"]
    return stack.cli.spawn(argv, env=env, name=f"io-raw-{pool}-c{concurrency}")


def plain_consumer(
    stack: Stack, deployment: Deployment, url: str, threads: int, report: str
) -> RunningProcess:
    env = clean_environment()
    env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
    argv = [sys.executable, "-m", "bench.plain_consumer", "--bootstrap", stack.bootstrap]
    argv += ["--topic", deployment.topics.topic, "--group", deployment.topics.group_id]
    argv += ["--url", url, "--threads", str(threads), "--report", report, "--redis", REDIS_URL]
    return stack.cli.spawn(argv, env=env, name=f"io-plain-t{threads}")


class Reports:
    """A Redis list of `[sent, finished]` pairs that a baseline pushes per job."""

    def __init__(self, stack: Stack, key: str, log: RunningProcess) -> None:
        self.stack, self.key, self.log = stack, key, log

    def reset(self) -> None:
        self.stack.redis.delete(self.key)

    def wait(self, count: int) -> float:
        """When the last of `count` jobs finished (epoch seconds)."""
        redis = self.stack.redis
        wait_for(
            f"{count} reports on {self.key} (log: {self.log.log_path})",
            lambda: int(redis.llen(self.key)) >= count,
            timeout=60 + count * DELAY_S,
            interval=0.05,
        )
        return max(float(json.loads(raw)[1]) for raw in redis.lrange(self.key, 0, -1))


@contextmanager
def running(stack: Stack, processes: list[RunningProcess]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            if "worker" in process.argv:
                stack.stop_worker(process)
            else:
                stack.stop(process)


def sample(m: Measurement, label: str, unit: str, rate: float) -> None:
    m.figure(label, unit).samples.append(rate)
    print(f"  io: {label}: {rate:,.1f} {unit}", file=sys.stderr, flush=True)


def run(stack: Stack, profile: Profile) -> Measurement:
    m = Measurement("io_bound", "I/O-bound http jobs (50 ms)")
    endpoint = Endpoint(stack)
    deployment = stack.deploy(partitions=3, database=True)
    store = deployment.job_store()
    bridge = stack.bridge(deployment)
    producer = EventProducer(stack.bootstrap, linger_ms=5)
    raw_app = create_app(REDIS_URL)
    payload = {"task": "http", "url": endpoint.url, "method": "POST", "body": BODY}
    not_completed = 0
    counts: dict[str, int] = {}
    try:
        for setup in setups(profile):
            count = burst(profile, setup.concurrency)
            counts[setup.label] = count
            processes = [jobexec_worker(stack, deployment, setup, endpoint.port)]
            raw: Reports | None = None
            raw_queue = ""
            plain: Reports | None = None
            plain_topic = ""
            if setup.raw:
                raw_queue = stack.new_queue()
                processes.append(raw_worker(stack, raw_queue, setup.pool, setup.concurrency))
                raw = Reports(stack, f"{raw_queue}.report", processes[-1])
            if setup.plain:
                plain_deployment = stack.deploy(partitions=3, database=False)
                plain_topic = plain_deployment.topics.topic
                key = f"{stack.new_queue()}.report"
                processes.append(
                    plain_consumer(stack, plain_deployment, endpoint.url, setup.concurrency, key)
                )
                plain = Reports(stack, key, processes[-1])
            with running(stack, processes):
                for process in processes:
                    wait_ready(process, plain_topic, timeout=90)
                for rep in range(profile.repetitions):
                    prefix = f"job_io{rep}_{setup.pool}{setup.concurrency}_"
                    ids = new_ids(prefix, count)
                    insert_jobs(store, ids, payload)
                    started = time.time()
                    producer.produce_events(deployment.topics.topic, ids)
                    producer.flush()
                    wait_for(
                        f"{count} http jobs, {setup.label} (log: {processes[0].log_path})",
                        lambda p=prefix, c=count: finished_count(store, p) >= c,
                        timeout=60 + count * DELAY_S,
                        interval=0.25,  # a poll scans the jobs table: not too often
                    )
                    ended = max(finish_times(store, prefix).values())
                    sample(m, setup.label, "jobs/s", count / (ended - started))
                    not_completed += count - status_count(store, prefix, "COMPLETED")
                    if raw is not None:
                        raw.reset()
                        started = time.time()
                        publish(raw_app, raw_queue, endpoint.url, count, raw.key)
                        rate = count / (raw.wait(count) - started)
                        sample(m, raw_label(setup.pool, setup.concurrency), "tasks/s", rate)
                    if plain is not None:
                        plain.reset()
                        started = time.time()
                        producer.produce_events(plain_topic, new_ids(f"plain{rep}_", count))
                        producer.flush()
                        rate = count / (plain.wait(count) - started)
                        sample(m, plain_label(setup.concurrency), "jobs/s", rate)
    finally:
        stack.stop(bridge)
        stack.stop(endpoint.process)
        del producer  # its connection ends before the broker does
    most = max(profile.io_gevent, *profile.io_levels)
    m.figure(f"ideal, {most} calls in flight (no overhead)", "jobs/s").samples.append(
        most / DELAY_S
    )
    add_targets(m, profile)
    m.details = {
        "endpoint_delay_ms": DELAY_S * 1000,
        "partitions": 3,
        "jobs_per_repetition": counts,
        "jobs_not_completed": not_completed,
        "growth": growth(m, profile),
    }
    return m


def publish(app: Celery, queue: str, url: str, count: int, report: str, batch: int = 500) -> None:
    """`count` raw http tasks, published in batches as the bridge does."""
    for start in range(0, count, batch):
        with app.producer_or_acquire() as producer, producer.batch(max_size=batch):
            for n in range(start, min(count, start + batch)):
                app.send_task(
                    RAW_HTTP_TASK,
                    kwargs={
                        "url": url,
                        "job_id": f"job_rawio_{n:07d}",
                        "attempt": 1,
                        "body": BODY,
                        "sent_at": time.time(),
                        "report": report,
                    },
                    queue=queue,
                    producer=producer,
                    retry=False,
                )


def add_targets(m: Measurement, profile: Profile) -> None:
    pools = (PREFORK, ("threads", profile.io_threads), ("gevent", profile.io_gevent))
    for pool, c in pools:
        m.targets.append(
            Target(
                f"http {pool} -c {c} >= 0.85 x raw Celery, same pool",
                ratio(m.median(Setup(pool, c, True, False).label), m.median(raw_label(pool, c))),
                ">=",
                0.85,
            )
        )
    compared = [("threads", profile.io_threads)]
    if profile.io_gevent != profile.io_threads:
        compared.append(("gevent", profile.io_gevent))
    for pool, c in compared:
        m.targets.append(
            Target(
                f"http {pool} -c {c} >= 0.8 x plain consumer, {c} threads",
                ratio(m.median(Setup(pool, c, False, True).label), m.median(plain_label(c))),
                ">=",
                0.8,
            )
        )


def growth(m: Measurement, profile: Profile) -> dict[str, dict[str, float]]:
    """Per pool, jobs/s at each level and each level's gain over the one before."""
    out: dict[str, dict[str, float]] = {}
    for pool in ("threads", "gevent"):
        rates = {c: m.median(Setup(pool, c, False, False).label) for c in profile.io_levels}
        levels = sorted(rates)
        out[pool] = {f"c{c}": round(rates[c], 1) for c in levels}
        for lower, upper in pairwise(levels):
            out[pool][f"gain c{lower}->c{upper}"] = round(ratio(rates[upper], rates[lower]), 2)
    return out
