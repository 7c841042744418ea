"""6. Scheduler: due jobs dispatched per second, from PostgreSQL rows to JobEvents in Kafka.

Each repetition inserts due SCHEDULED rows (next_run_at in the past) as the job API does, on a
fresh topic, then starts `jobexec scheduler`. The rate counts from the first claim's transaction
time (the rows' `updated_at`) to the timestamp of the last JobEvent written, so start-up stays
out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bench.profiles import Profile
from bench.results import Measurement
from bench.stack import (
    Deployment,
    Stack,
    first_claim,
    insert_jobs,
    new_ids,
    record_times,
    status_among,
    wait_for,
)
from jobexec.testing.kafka import KafkaTopics

DISPATCHED = "jobexec scheduler (batch 500)"
PARTITIONS = 3


def run(stack: Stack, profile: Profile) -> Measurement:
    m = Measurement("scheduler", "6 scheduler dispatch")
    deployment = stack.deploy(partitions=PARTITIONS, database=True)
    for rep in range(profile.repetitions):
        rate = dispatch_rate(stack, deployment, f"job_sched{rep}_", profile.scheduler_jobs)
        m.figure(DISPATCHED, "jobs/s").samples.append(rate)
    m.details = {"jobs": profile.scheduler_jobs, "partitions": PARTITIONS, "batch_size": 500}
    return m


def dispatch_rate(
    stack: Stack,
    deployment: Deployment,
    prefix: str,
    count: int,
    overrides: Mapping[str, str] | None = None,
) -> float:
    """Insert `count` due SCHEDULED rows into the deployment's job database, run a scheduler
    on a fresh topic until it dispatched them all, and return its jobs/s."""
    store = deployment.job_store()
    topics = KafkaTopics(stack.tansu, PARTITIONS)
    topics.create()
    own = replace(deployment, topics=topics)
    due = datetime.now(UTC) - timedelta(seconds=5)
    ids = new_ids(prefix, count)
    insert_jobs(store, ids, {"task": "noop"}, status="SCHEDULED", attempts=0, next_run_at=due)
    scheduler = stack.scheduler(own, {"configs.scheduler.max-sleep-ms": "200", **(overrides or {})})
    wait_for(
        f"{count} due jobs claimed (log: {scheduler.log_path})",
        lambda: status_among(store, ids, "RUNNING") >= count,
        timeout=60 + count / 200,
        interval=0.2,
    )
    # The scheduler flushes each batch before claiming the next: the last one is on its way.
    stamps = record_times(stack.bootstrap, topics.topic, count, timeout=60)
    stack.stop(scheduler)
    topics.delete()
    return count / (max(stamps) - first_claim(store, prefix))
