"""Growth: end-to-end and scheduler rates on a job database with a month of history, against an
empty one, in the same run; the tables' sizes; what a retention pass costs on that history.

Two deployments side by side, each with its own topic, queue, job database, bridge and worker:
one on an empty schema, one on a schema filled by `bench.history_fill` (`growth_jobs` jobs,
99 % finished, and `growth_runs` tries). Each repetition offers both the same end-to-end burst
(`bench.end_to_end.burst`); then, the pipelines stopped, each repetition runs a scheduler on
each database (`bench.scheduler_rate.dispatch_rate`); the order is swapped every repetition so
that the machine's load falls on both alike. Retention is
off in every process (`prune-interval-ms` 0): the pass is measured on its own at the end, the
real `Pruner` with each batch (one statement, one transaction: the time its locks are held)
timed.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from bench import history_fill
from bench.end_to_end import burst
from bench.pipeline import Pipeline
from bench.profiles import Profile
from bench.results import Measurement, Target, ratio
from bench.scheduler_rate import dispatch_rate
from bench.stack import Stack
from jobexec.core.config import Settings
from jobexec.core.db.browse import JobTally
from jobexec.core.db.store import JobStore
from jobexec.core.retention import Pruner, Retention

EMPTY = "empty"
GROWN = "grown"
PRUNE_OFF = {"configs.history.prune-interval-ms": "0"}
TARGET = 0.9
MB = 2**20


def e2e_label(side: str) -> str:
    return f"end to end (noop), {side} database"


def scheduler_label(side: str) -> str:
    return f"scheduler dispatch, {side} database"


def run(stack: Stack, profile: Profile, concurrency: int) -> Measurement:
    m = Measurement("growth", "growth (large tables)")
    load_before = os.getloadavg()
    deployments = {EMPTY: stack.deploy(), GROWN: stack.deploy()}
    grown = deployments[GROWN].job_store()
    filled = history_fill.fill(grown.engine, profile.growth_jobs, profile.growth_runs)
    sizes = history_fill.sizes(grown.engine)
    pipelines: dict[str, Pipeline] = {}
    try:
        for side, deployment in deployments.items():
            pipelines[side] = Pipeline(stack, concurrency, deployment, PRUNE_OFF, raw=False)
        for rep in range(profile.repetitions):
            for side in _order(rep):
                rate, _ = burst(pipelines[side], f"job_growth_e2e{rep}_", profile.e2e_events)
                m.figure(e2e_label(side), "jobs/s").samples.append(rate)
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
    # After the pipelines: the rows a scheduler claims stay RUNNING (nothing consumes its
    # topic), and the workers' rescuer must not scan them during the bursts.
    for rep in range(profile.repetitions):
        for side in _order(rep):
            rate = dispatch_rate(
                stack,
                deployments[side],
                f"job_growth_sched{rep}_",
                profile.scheduler_jobs,
                PRUNE_OFF,
            )
            m.figure(scheduler_label(side), "jobs/s").samples.append(rate)
    sweep = retention_pass(grown)
    m.figure("retention pass, deleted runs", "rows/s").samples.append(sweep["rows_per_s"])
    m.figure("retention pass, longest batch", "ms").samples.append(sweep["longest_batch_ms"])
    per_million = profile.growth_runs / 1e6
    for table in ("jobs", "job_runs"):
        m.figure(f"{table} total size per 1M runs", "MB").samples.append(
            sizes[table]["total"] / MB / per_million
        )
    m.details = {
        "jobs": filled.jobs,
        "runs": filled.runs,
        "fill_seconds": round(filled.seconds, 1),
        "history_days": history_fill.HISTORY_DAYS,
        "job_statuses_after": JobTally(grown.engine).status_counts(),
        "sizes_mb_per_million_runs": {
            table: {name: round(b / MB / per_million, 2) for name, b in parts.items()}
            for table, parts in sizes.items()
        },
        "sizes_bytes": sizes,
        "retention": sweep,
        "e2e_events": profile.e2e_events,
        "scheduler_jobs": profile.scheduler_jobs,
        "concurrency": concurrency,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
    }
    for label in (e2e_label, scheduler_label):
        m.targets.append(
            Target(
                f"{label(GROWN)} >= {TARGET} x empty",
                ratio(m.median(label(GROWN)), m.median(label(EMPTY))),
                ">=",
                TARGET,
            )
        )
    return m


def _order(rep: int) -> tuple[str, str]:
    """Empty first on even repetitions, grown first on odd ones."""
    return (EMPTY, GROWN) if rep % 2 == 0 else (GROWN, EMPTY)


def retention_pass(store: JobStore) -> dict[str, Any]:
    """One pass of the real Pruner with the default retention (its batches, its pauses), each
    batch of `job_runs` timed: deleted rows, rows/s over the pass and over the batches alone,
    the longest batch and the median one."""
    retention = replace(Retention.from_settings(Settings.load({})), interval=0)
    pruner = Pruner(store, retention)
    batches: list[float] = []
    pruner.tables["job_runs"] = _timed(pruner.tables["job_runs"], batches)
    began = time.perf_counter()
    deleted = pruner.prune()
    elapsed = time.perf_counter() - began
    if deleted is None:
        raise RuntimeError("another process holds the pruning lock of the grown database")
    runs = deleted["job_runs"]
    return {
        "retention_days": retention.keep.days,
        "batch_rows": retention.batch,
        "pause_s": retention.pause,
        "deleted_runs": runs,
        "batches": len(batches),
        "seconds": round(elapsed, 2),
        "rows_per_s": runs / elapsed if elapsed else 0.0,
        "rows_per_s_in_batches": runs / sum(batches) if batches else 0.0,
        "longest_batch_ms": max(batches, default=0.0) * 1000,
        "median_batch_ms": statistics.median(batches) * 1000 if batches else 0.0,
    }


def _timed(
    delete_batch: Callable[[datetime, int], int], durations: list[float]
) -> Callable[[datetime, int], int]:
    def timed(cutoff: datetime, batch: int) -> int:
        began = time.perf_counter()
        count = delete_batch(cutoff, batch)
        durations.append(time.perf_counter() - began)
        return count

    return timed
