"""6. Scheduler: due jobs dispatched per second, from PostgreSQL rows to JobEvents in Kafka.

Each repetition inserts due SCHEDULED rows (next_run_at in the past) as the job API does, on a
fresh topic, then starts `jobexec scheduler`. The rate counts from the first claim's transaction
time (the rows' `updated_at`) to the timestamp of the last JobEvent written, so start-up stays
out.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bench.profiles import Profile
from bench.results import Measurement
from bench.stack import (
    Stack,
    first_claim,
    insert_jobs,
    new_ids,
    record_times,
    status_count,
    wait_for,
)
from jobexec.testing.kafka import KafkaTopics

DISPATCHED = "jobexec scheduler (batch 500)"
PARTITIONS = 3


def run(stack: Stack, profile: Profile) -> Measurement:
    m = Measurement("scheduler", "6 scheduler dispatch")
    deployment = stack.deploy(partitions=PARTITIONS, database=True)
    store = deployment.job_store()
    count = profile.scheduler_jobs
    for rep in range(profile.repetitions):
        topics = KafkaTopics(stack.tansu, PARTITIONS)
        topics.create()
        own = replace(deployment, topics=topics)
        prefix = f"job_sched{rep}_"
        due = datetime.now(UTC) - timedelta(seconds=5)
        ids = new_ids(prefix, count)
        insert_jobs(store, ids, {"task": "noop"}, status="SCHEDULED", attempts=0, next_run_at=due)
        scheduler = stack.scheduler(own, {"configs.scheduler.max-sleep-ms": "200"})
        wait_for(
            f"{count} due jobs claimed (log: {scheduler.log_path})",
            lambda prefix=prefix: status_count(store, prefix, "RUNNING") >= count,
            timeout=60 + count / 200,
            interval=0.2,
        )
        # The scheduler flushes each batch before claiming the next: the last one is on its way.
        stamps = record_times(stack.bootstrap, topics.topic, count, timeout=60)
        stack.stop(scheduler)
        topics.delete()
        m.figure(DISPATCHED, "jobs/s").samples.append(
            count / (max(stamps) - first_claim(store, prefix))
        )
    m.details = {"jobs": count, "partitions": PARTITIONS, "batch_size": 500}
    return m
