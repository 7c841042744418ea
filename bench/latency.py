"""3. Latency at a fixed offered load: half the end-to-end capacity measured just before.

jobexec: from the Kafka record's timestamp (set by the producer as it sends) to the job's
terminal state in PostgreSQL (`jobs.updated_at`). Raw Celery, beside it at the same rate: from
`send_task` to the task's start in the worker. JobEvents and tasks are sent one at a time on a
fixed schedule (open loop), so a slow pipeline does not slow the offered load down.
"""

from __future__ import annotations

import time

from bench.pipeline import Pipeline
from bench.profiles import Profile
from bench.results import Measurement, Target, percentile, ratio

PERCENTILES = (50, 95, 99)
JOBEXEC = "jobexec record -> terminal"
RAW = "raw Celery publish -> start"


def run(pipeline: Pipeline, profile: Profile, capacity: float) -> Measurement:
    m = Measurement("latency", "3 latency at half capacity")
    rate = max(1.0, capacity / 2)
    count = max(10, int(rate * profile.latency_seconds))
    for rep in range(profile.repetitions):
        prefix = f"job_lat{rep}_"
        ids = pipeline.prepare(prefix, count)
        sent: dict[str, float] = {}
        for job_id, due in zip(ids, _schedule(rate, count), strict=True):
            _sleep_until(due)
            stamp = int(time.time() * 1000)
            pipeline.paced.produce_event(pipeline.topic, job_id, timestamp_ms=stamp)
            sent[job_id] = stamp / 1000
        pipeline.paced.flush()
        finished = pipeline.wait_finished(prefix, ids)
        _record(m, JOBEXEC, [finished[j] - sent[j] for j in ids])

        pipeline.raw_reset()
        for n, due in enumerate(_schedule(rate, count)):
            _sleep_until(due)
            pipeline.raw_publish_one(n)
        reports = pipeline.raw_wait(count)
        _record(m, RAW, [s - p for p, s in reports])
    m.details = {
        "offered_rate_per_s": rate,
        "capacity_per_s": capacity,
        "events_per_repetition": count,
        "concurrency": pipeline.concurrency,
    }
    m.targets.append(
        Target(
            "p99 latency <= 3 x raw Celery p99",
            ratio(m.median(f"{JOBEXEC} p99"), m.median(f"{RAW} p99")),
            "<=",
            3.0,
        )
    )
    return m


def _schedule(rate: float, count: int) -> list[float]:
    start = time.monotonic() + 0.05
    return [start + n / rate for n in range(count)]


def _sleep_until(due: float) -> None:
    left = due - time.monotonic()
    if left > 0:
        time.sleep(left)


def _record(m: Measurement, label: str, seconds: list[float]) -> None:
    for pct in PERCENTILES:
        m.figure(f"{label} p{pct}", "ms").samples.append(percentile(seconds, pct) * 1000)
