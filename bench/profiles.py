"""How big each measurement is: `full` (the issue's sizes), `quick`, the CI `smoke` run and
`soak` (one million events through the bridge and the worker, for memory growth; not in CI)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    repetitions: int
    bridge_events: int  # pre-filled topic read by the bridge and the raw loops; bridge memory
    single_publishes: int  # raw Celery publishes one at a time (slow: fewer)
    e2e_events: int  # noop jobs per repetition, Kafka to COMPLETED
    latency_seconds: float  # paced load per repetition
    scale_workers: tuple[int, ...]
    scale_seconds: float  # ideal duration of each scale-out run (sleep jobs of 100 ms)
    memory_events: int  # events through bridge and worker for the worker's memory
    scheduler_jobs: int  # due jobs per repetition
    tracing_events: int  # noop jobs per pipeline per round: tracing off, on, no hooks
    tracing_rounds: int  # interleaved rounds of the three
    growth_jobs: int  # jobs in the grown database (99 % finished)
    growth_runs: int  # tries in its job_runs
    io_levels: tuple[int, ...]  # threads and gevent concurrencies for the I/O-bound growth
    io_threads: int  # the threads concurrency held against raw Celery and the plain consumer
    io_gevent: int  # the gevent concurrency held against them
    io_seconds: float  # ideal duration of each I/O-bound burst (50 ms calls), before the cap
    io_max_jobs: int  # cap on an I/O-bound burst

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PROFILES = {
    "full": Profile(
        name="full",
        repetitions=3,
        bridge_events=100_000,
        single_publishes=20_000,
        e2e_events=5_000,
        latency_seconds=15,
        scale_workers=(1, 2, 4, 8),
        scale_seconds=5,
        memory_events=30_000,
        scheduler_jobs=30_000,
        tracing_events=2_000,
        tracing_rounds=9,
        growth_jobs=1_000_000,
        growth_runs=5_000_000,
        io_levels=(16, 64, 256),
        io_threads=64,
        io_gevent=256,
        io_seconds=3,
        io_max_jobs=6_000,
    ),
    "quick": Profile(
        name="quick",
        repetitions=3,
        bridge_events=15_000,
        single_publishes=5_000,
        e2e_events=1_500,
        latency_seconds=6,
        scale_workers=(1, 2, 4, 8),
        scale_seconds=2,
        memory_events=6_000,
        scheduler_jobs=10_000,
        tracing_events=400,
        tracing_rounds=7,
        growth_jobs=200_000,
        growth_runs=1_000_000,
        io_levels=(16, 64, 256),
        io_threads=64,
        io_gevent=256,
        io_seconds=1,
        io_max_jobs=800,
    ),
    "smoke": Profile(
        name="smoke",
        repetitions=1,
        bridge_events=300,
        single_publishes=200,
        e2e_events=200,
        latency_seconds=2,
        scale_workers=(1, 2),
        scale_seconds=1,
        memory_events=300,
        scheduler_jobs=300,
        tracing_events=100,
        tracing_rounds=1,
        growth_jobs=2_000,
        growth_runs=10_000,
        io_levels=(4,),
        io_threads=4,
        io_gevent=4,
        io_seconds=0.25,
        io_max_jobs=40,
    ),
}

# Memory over one million events (`--soak --only bridge memory`): the bridge's throughput run,
# one repetition of 1M records, gives its RSS; the worker drains 1M noop jobs (about 80 minutes
# at 200 jobs/s here). The other measurements keep the quick sizes.
PROFILES["soak"] = replace(
    PROFILES["quick"],
    name="soak",
    repetitions=1,
    bridge_events=1_000_000,
    memory_events=1_000_000,
)
