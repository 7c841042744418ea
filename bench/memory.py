"""5. Memory: bridge and worker resident memory (psutil RSS) before and after many events.

Bridge: from the bridge-throughput repetitions (100,000 events each in the full profile): RSS
once the first batch is in Redis (connections open, fetch buffers filled) and once all are in.
Worker: the topic is pre-filled with N noop JobEvents (30,000 in full: the worker drains a few
hundred a second on two cores, so 100,000 would take most of the run's budget), and
`jobexec worker` plus `jobexec bridge` run them to COMPLETED with their default settings (the
bridge pauses at 10,000 waiting tasks). Its RSS, main process plus pool, is sampled every second
against the events done: "before" after the first job, "after" at the end, and the growth trend
is the least-squares slope over the second half of the samples, scaled to 100,000 events.
"""

from __future__ import annotations

import time
from typing import Any

from bench.profiles import Profile
from bench.results import Measurement, Target
from bench.stack import (
    EventProducer,
    Stack,
    finished_count,
    insert_jobs,
    new_ids,
    queue_depth,
    tree_rss_mb,
)

PER = 100_000  # trends are given per this many events


def run(
    stack: Stack,
    profile: Profile,
    concurrency: int,
    bridge_runs: list[dict[str, float]] | None = None,
) -> Measurement:
    """`bridge_runs`: the RSS the bridge-throughput repetitions saw (else this run's bridge)."""
    m = Measurement("memory", "5 memory (RSS)")
    deployment = stack.deploy(partitions=3, database=True)
    store = deployment.job_store()
    count = profile.memory_events
    ids = new_ids("job_mem_", count)
    insert_jobs(store, ids, {"task": "noop"})
    producer = EventProducer(stack.bootstrap, linger_ms=5)
    producer.produce_events(deployment.topics.topic, ids)
    producer.flush()
    worker = stack.worker(deployment, concurrency, wait=False)
    bridge = stack.bridge(deployment, wait=False)
    stack.worker_ready(worker)
    stack.bridge_ready(bridge, deployment)
    samples: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120 + count / 20
    while True:
        done = finished_count(store, "job_mem_")
        bridged = done + queue_depth(stack.redis, deployment.queue)
        bridge_rss, _ = tree_rss_mb(bridge.pid)
        worker_main, pool = tree_rss_mb(worker.pid)
        samples.append(
            {
                "t": time.monotonic(),
                "done": done,
                "bridged": bridged,
                "bridge_mb": bridge_rss,
                "worker_mb": worker_main + sum(pool),
                "worker_main_mb": worker_main,
                "worker_pool_mb": pool,
            }
        )
        if done >= count:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"memory run finished {done} of {count} events")
        time.sleep(1.0)
    stack.stop(bridge)
    stack.stop_worker(worker)

    worker_before = next(s for s in samples if s["done"] > 0)["worker_mb"]
    worker_after = samples[-1]["worker_mb"]
    half = samples[len(samples) // 2 :]
    worker_trend = _slope([s["done"] for s in half], [s["worker_mb"] for s in half]) * PER
    bridge_trend = _slope([s["bridged"] for s in half], [s["bridge_mb"] for s in half]) * PER
    if bridge_runs:
        bridge_events = profile.bridge_events
        for run_rss in bridge_runs:
            m.figure("bridge before", "MB").samples.append(run_rss["first_batch"])
            m.figure("bridge after", "MB").samples.append(run_rss["end"])
            m.figure("bridge growth", "MB").samples.append(run_rss["end"] - run_rss["first_batch"])
    else:
        bridge_events = count
        before = next(s for s in samples if s["bridged"] > 0)["bridge_mb"]
        after = next(s for s in samples if s["bridged"] >= count)["bridge_mb"]
        m.figure("bridge before", "MB").samples.append(before)
        m.figure("bridge after", "MB").samples.append(after)
        m.figure("bridge growth", "MB").samples.append(after - before)
    for label, value in (
        (f"worker before (main + {concurrency} pool)", worker_before),
        (f"worker after (main + {concurrency} pool)", worker_after),
        ("worker growth", worker_after - worker_before),
        (f"worker trend per {PER:,} events", worker_trend),
    ):
        m.figure(label, "MB").samples.append(value)
    m.details = {
        "bridge_events": bridge_events,
        "worker_events": count,
        "concurrency": concurrency,
        "bridge_trend_mb_per_100k": bridge_trend,
        "bridge_ready_mb": samples[0]["bridge_mb"],
        "samples": [{k: v for k, v in s.items() if k != "t"} for s in samples],
    }
    m.targets += [
        Target(
            f"bridge memory growth over {bridge_events:,} events (goal: 100,000)",
            m.median("bridge growth"),
            "<",
            30.0,
            "MB",
        ),
        Target(
            "worker growth trend per 100,000 events (second half)",
            worker_trend,
            "<",
            10.0,
            "MB",
        ),
    ]
    return m


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs; 0 when xs do not vary."""
    n = len(xs)
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var
