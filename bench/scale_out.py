"""4. Scale-out: one Kafka partition, `sleep` jobs of 100 ms, 1, 2, 4 and 8 worker processes.

One bridge on a one-partition topic feeds `jobexec worker --concurrency N`: the workers scale
independently of the partitions. Each run offers N x 10 jobs per second of ideal duration at
once; the rate counts from the first try's start to the last job's terminal state, so the
bridge's hand-over time, which does not depend on N, stays out.
"""

from __future__ import annotations

from bench.profiles import Profile
from bench.results import Measurement, Target, ratio
from bench.stack import (
    EventProducer,
    Stack,
    finish_times,
    finished_count,
    first_run_start,
    insert_jobs,
    new_ids,
    wait_for,
)

SLEEP_S = 0.1


def label(workers: int) -> str:
    return f"{workers} worker process{'es' if workers > 1 else ''}"


def run(stack: Stack, profile: Profile) -> Measurement:
    m = Measurement("scale_out", "4 scale-out (1 partition)")
    deployment = stack.deploy(partitions=1, database=True)
    store = deployment.job_store()
    bridge = stack.bridge(deployment)
    producer = EventProducer(stack.bootstrap, linger_ms=5)
    levels = profile.scale_workers
    # One worker per level, its repetitions back to back: a worker start costs seconds.
    for workers in levels:
        worker = stack.worker(deployment, workers)
        for rep in range(profile.repetitions):
            count = max(2 * workers, int(workers / SLEEP_S * profile.scale_seconds))
            prefix = f"job_scale{rep}_{workers}_"
            ids = new_ids(prefix, count)
            insert_jobs(store, ids, {"task": "sleep", "seconds": SLEEP_S})
            producer.produce_events(deployment.topics.topic, ids)
            producer.flush()
            wait_for(
                f"{count} sleep jobs on {workers} workers (log: {worker.log_path})",
                lambda prefix=prefix, count=count: finished_count(store, prefix) >= count,
                timeout=60 + 3 * count * SLEEP_S / workers,
                interval=0.1,
            )
            window = max(finish_times(store, prefix).values()) - first_run_start(store, prefix)
            m.figure(label(workers), "jobs/s").samples.append(count / window)
        stack.stop_worker(worker)
    stack.stop(bridge)
    m.figure(f"ideal for {levels[-1]} (no overhead)", "jobs/s").samples.append(levels[-1] / SLEEP_S)
    m.details = {"partitions": 1, "sleep_seconds": SLEEP_S, "levels": list(levels)}
    m.targets.append(
        Target(
            f"{levels[-1]} worker processes >= 6 x one (sleep jobs)",
            ratio(m.median(label(levels[-1])), m.median(label(levels[0]))),
            ">=",
            6.0 if levels[-1] >= 8 else 0.75 * levels[-1],
        )
    )
    return m
