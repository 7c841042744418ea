"""The running pipeline that measurements 2 and 3 share, beside a raw Celery worker.

jobexec side: one topic (3 partitions), a fresh job database, `jobexec bridge` and
`jobexec worker`. Raw side: `celery -A bench.raw_celery_app worker` on its own queue with the
same pool, concurrency, prefetch multiplier (1) and acks_late. Minimal side (latency only): its
own topic (3 partitions) read by `bench.minimal_pipeline`, which sends each record's no-op task
to the raw worker, started when latency begins. All stay up across repetitions, so a repetition
measures work, not start-up.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Mapping, Sequence

from bench.raw_celery_app import RAW_TASK, create_app, raw_kwargs
from bench.stack import (
    REDIS_URL,
    REPO,
    Deployment,
    EventProducer,
    Stack,
    finish_times,
    finished_among,
    insert_jobs,
    new_ids,
    wait_for,
)
from jobexec.testing.config_files import clean_environment
from jobexec.testing.processes import RunningProcess

NOOP = {"task": "noop"}


class Pipeline:
    def __init__(
        self,
        stack: Stack,
        concurrency: int,
        deployment: Deployment | None = None,
        overrides: Mapping[str, str] | None = None,
        raw: bool = True,
    ) -> None:
        """On `deployment` (default: a fresh one with an empty job database); `overrides` go
        to the bridge and the worker; `raw=False` leaves the raw Celery worker out."""
        self.stack = stack
        self.concurrency = concurrency
        self.deployment = deployment or stack.deploy(partitions=3, database=True)
        self.store = self.deployment.job_store()
        self.topic = self.deployment.topics.topic
        self.raw_queue = stack.new_queue()
        self.raw_report = f"{self.raw_queue}.report"
        # Started together, waited for together: start-up is not what is measured.
        self.worker = stack.worker(self.deployment, concurrency, wait=False, overrides=overrides)
        self.bridge = stack.bridge(self.deployment, overrides, wait=False)
        self.raw_worker = stack.raw_worker(self.raw_queue, concurrency, wait=False) if raw else None
        stack.worker_ready(self.worker)
        if self.raw_worker is not None:
            stack.worker_ready(self.raw_worker)
        stack.bridge_ready(self.bridge, self.deployment)
        self.minimal: RunningProcess | None = None  # started by latency only: see start_minimal
        self.minimal_topic = ""
        self.raw_app = create_app(REDIS_URL)
        self.bulk = EventProducer(stack.bootstrap, linger_ms=5)
        self.paced = EventProducer(stack.bootstrap, linger_ms=0)

    def close(self) -> None:
        self.stack.stop(self.bridge)
        if self.minimal is not None:
            self.stack.stop(self.minimal)
        self.stack.stop_worker(self.worker)
        if self.raw_worker is not None:
            self.stack.stop_worker(self.raw_worker)
        del self.bulk, self.paced  # their connections end before the broker does

    # --- jobexec ------------------------------------------------------------------------------

    def prepare(self, prefix: str, count: int) -> list[str]:
        """Job rows as the scheduler leaves them (RUNNING, attempts 1), not yet published."""
        ids = new_ids(prefix, count)
        insert_jobs(self.store, ids, NOOP)
        return ids

    def wait_finished(
        self, prefix: str, ids: Sequence[str], rate_floor: float = 20.0
    ) -> dict[str, float]:
        """Wait until every one of these jobs reached a terminal state; job id -> when.

        Polled by id, so the wait costs the same on a large jobs table as on an empty one."""
        count = len(ids)
        wait_for(
            f"{count} {prefix}* jobs to finish (worker log: {self.worker.log_path})",
            lambda: finished_among(self.store, ids) >= count,
            timeout=60 + count / rate_floor,
            interval=0.25,
        )
        return finish_times(self.store, prefix)

    # --- raw Celery ---------------------------------------------------------------------------

    def raw_reset(self) -> None:
        self.stack.redis.delete(self.raw_report)

    def raw_publish_batch(self, count: int, batch: int = 500) -> None:
        app = self.raw_app
        for start in range(0, count, batch):
            with app.producer_or_acquire() as producer, producer.batch(max_size=batch):
                for n in range(start, min(count, start + batch)):
                    app.send_task(
                        RAW_TASK,
                        kwargs=raw_kwargs(n, time.time(), self.raw_report),
                        queue=self.raw_queue,
                        producer=producer,
                        retry=False,
                    )

    def raw_publish_one(self, n: int) -> None:
        self.raw_app.send_task(
            RAW_TASK,
            kwargs=raw_kwargs(n, time.time(), self.raw_report),
            queue=self.raw_queue,
            retry=False,
        )

    # --- minimal Kafka -> Celery pipeline ------------------------------------------------------

    def start_minimal(self) -> None:
        """`bench.minimal_pipeline` on a topic of its own, sending to the raw worker's queue;
        returns once it has partitions. Not started with the rest: its idle fetching would
        run beside the end-to-end bursts."""
        if self.minimal is not None:
            return
        topics = self.stack.deploy(partitions=3, database=False).topics
        env = clean_environment()
        env.update({"PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)})
        argv = [
            sys.executable,
            "-m",
            "bench.minimal_pipeline",
            "--bootstrap",
            self.stack.bootstrap,
            "--topic",
            topics.topic,
            "--group",
            topics.group_id,
            "--queue",
            self.raw_queue,
            "--report",
            self.raw_report,
            "--broker",
            REDIS_URL,
        ]
        self.minimal = self.stack.cli.spawn(argv, env=env, name="minimal-pipeline")
        self.minimal.wait_for_log(rf"assigned .*{re.escape(topics.topic)}\[\d+\]", timeout=90)
        self.minimal_topic = topics.topic

    def raw_wait(self, count: int, rate_floor: float = 50.0) -> list[tuple[float, float]]:
        """Wait until `count` raw tasks reported; their `(sent_at, started_at)` pairs."""
        assert self.raw_worker is not None, "this pipeline has no raw worker"
        redis = self.stack.redis
        wait_for(
            f"{count} raw tasks (worker log: {self.raw_worker.log_path})",
            lambda: int(redis.llen(self.raw_report)) >= count,
            timeout=60 + count / rate_floor,
            interval=0.1,
        )
        pairs = [json.loads(raw) for raw in redis.lrange(self.raw_report, 0, -1)]
        return [(float(sent), float(started)) for sent, started in pairs]
