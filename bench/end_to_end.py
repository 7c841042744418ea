"""2. End-to-end throughput: `noop` jobs from Kafka to COMPLETED in PostgreSQL.

Held against a plain Celery no-op task drained by a worker with the same configuration. Each
repetition offers a burst to the running pipeline: N JobEvents produced at once (jobexec), or N
tasks published in batches (raw). The rate is N over the time from the burst's start to the last
job's terminal state (jobexec: `jobs.updated_at`; raw: the last task's start).
"""

from __future__ import annotations

import time

from bench.pipeline import Pipeline
from bench.profiles import Profile
from bench.results import Measurement, Target, ratio
from bench.stack import status_among

JOBEXEC = "jobexec Kafka -> COMPLETED (noop)"
RAW = "raw Celery no-op drain"


def burst(pipeline: Pipeline, prefix: str, count: int) -> tuple[float, int]:
    """`count` noop JobEvents at once through the running pipeline: jobs/s from the burst's
    start to the last terminal row, and how many of them did not end COMPLETED."""
    ids = pipeline.prepare(prefix, count)
    started = time.time()
    pipeline.bulk.produce_events(pipeline.topic, ids)
    pipeline.bulk.flush()
    finished = pipeline.wait_finished(prefix, ids)
    rate = count / (max(finished.values()) - started)
    return rate, count - status_among(pipeline.store, ids, "COMPLETED")


def run(pipeline: Pipeline, profile: Profile) -> Measurement:
    m = Measurement("end_to_end", "2 end-to-end throughput")
    count = profile.e2e_events
    failed = 0
    for rep in range(profile.repetitions):
        rate, not_completed = burst(pipeline, f"job_e2e{rep}_", count)
        m.figure(JOBEXEC, "jobs/s").samples.append(rate)
        failed += not_completed

        pipeline.raw_reset()
        started = time.time()
        pipeline.raw_publish_batch(count)
        reports = pipeline.raw_wait(count)
        m.figure(RAW, "tasks/s").samples.append(count / (max(s for _, s in reports) - started))
    m.details = {
        "events": count,
        "worker_pool": "prefork",
        "concurrency": pipeline.concurrency,
        "prefetch_multiplier": 1,
        "acks_late": True,
        "jobs_not_completed": failed,
    }
    m.targets.append(
        Target(
            "end-to-end >= 0.8 x raw Celery no-op drain",
            ratio(m.median(JOBEXEC), m.median(RAW)),
            ">=",
            0.8,
        )
    )
    return m
