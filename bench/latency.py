"""3. Latency at a fixed offered load: half the end-to-end capacity measured just before.

jobexec: from the Kafka record's timestamp (set by the producer as it sends) to the job's
terminal state in PostgreSQL (`jobs.updated_at`). The fair baseline, at the same rate: the same
record timestamp to the end of a no-op task sent by `bench.minimal_pipeline` (consume,
`send_task`, commit) and run by the raw worker (same Redis, pool and concurrency as jobexec's
worker). Beside them, raw Celery: from `send_task` to the task's start, no Kafka at all.
Records and tasks are sent one at a time on a fixed schedule (open loop), so a slow pipeline
does not slow the offered load down; each repetition runs the three back to back, the order
rotated every repetition so that a drifting machine load does not always favour one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from bench.pipeline import Pipeline
from bench.profiles import Profile
from bench.results import Measurement, Target, percentile, ratio
from bench.stack import new_ids

PERCENTILES = (50, 95, 99)
JOBEXEC = "jobexec record -> terminal"
MINIMAL = "minimal Kafka->Celery record -> end"
RAW = "raw Celery publish -> start"
WARM_UP = 20  # records through the minimal pipeline before measuring: e2e warmed jobexec's


def run(pipeline: Pipeline, profile: Profile, capacity: float) -> Measurement:
    m = Measurement("latency", "3 latency at half capacity")
    rate = max(1.0, capacity / 2)
    count = max(10, int(rate * profile.latency_seconds))
    pipeline.start_minimal()
    load_before = os.getloadavg()
    _minimal(pipeline, "job_latw_", rate, WARM_UP)
    # Figures in a fixed order, whatever order the repetitions run in.
    for label in (JOBEXEC, MINIMAL, RAW):
        for pct in PERCENTILES:
            m.figure(f"{label} p{pct}", "ms")
    for rep in range(profile.repetitions):
        shift = rep % len(SIDES)
        for label, prefix, measure in SIDES[shift:] + SIDES[:shift]:
            _record(m, label, measure(pipeline, f"{prefix}{rep}_", rate, count))
    load_after = os.getloadavg()
    m.details = {
        "offered_rate_per_s": rate,
        "capacity_per_s": capacity,
        "events_per_repetition": count,
        "concurrency": pipeline.concurrency,
        "jobexec_over_minimal": {
            f"p{pct}": round(ratio(m.median(f"{JOBEXEC} p{pct}"), m.median(f"{MINIMAL} p{pct}")), 3)
            for pct in PERCENTILES
        },
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
    }
    m.targets += [
        Target(
            "p99 latency <= 1.5 x minimal Kafka->Celery p99",
            ratio(m.median(f"{JOBEXEC} p99"), m.median(f"{MINIMAL} p99")),
            "<=",
            1.5,
        ),
        Target(
            "p50 latency - minimal Kafka->Celery p50 <= 5 ms",
            m.median(f"{JOBEXEC} p50") - m.median(f"{MINIMAL} p50"),
            "<=",
            5.0,
            unit="ms",
        ),
        Target(
            "p99 latency <= 3 x raw Celery p99",
            ratio(m.median(f"{JOBEXEC} p99"), m.median(f"{RAW} p99")),
            "<=",
            3.0,
        ),
    ]
    return m


def _jobexec(pipeline: Pipeline, prefix: str, rate: float, count: int) -> list[float]:
    """Seconds from each JobEvent's record timestamp to its job's terminal state."""
    ids = pipeline.prepare(prefix, count)
    sent = _produce(pipeline, pipeline.topic, ids, rate)
    finished = pipeline.wait_finished(prefix, ids)
    return [finished[j] - sent[j] for j in ids]


def _minimal(pipeline: Pipeline, prefix: str, rate: float, count: int) -> list[float]:
    """Seconds from each record's timestamp to the end of its task, by the minimal pipeline."""
    pipeline.raw_reset()
    _produce(pipeline, pipeline.minimal_topic, new_ids(prefix, count), rate)
    return [end - stamp for stamp, end in pipeline.raw_wait(count)]


def _raw(pipeline: Pipeline, _prefix: str, rate: float, count: int) -> list[float]:
    """Seconds from each `send_task` to its task's start, no Kafka."""
    pipeline.raw_reset()
    for n, due in enumerate(_schedule(rate, count)):
        _sleep_until(due)
        pipeline.raw_publish_one(n)
    return [started - sent for sent, started in pipeline.raw_wait(count)]


Side = Callable[[Pipeline, str, float, int], list[float]]
# label, job id prefix (of a repetition), what measures it: in the order of repetition 0.
SIDES: list[tuple[str, str, Side]] = [
    (JOBEXEC, "job_lat", _jobexec),
    (MINIMAL, "job_latm", _minimal),
    (RAW, "job_raw", _raw),
]


def _produce(pipeline: Pipeline, topic: str, ids: list[str], rate: float) -> dict[str, float]:
    """JobEvents one at a time on the schedule, each stamped as sent; job id -> that stamp."""
    sent: dict[str, float] = {}
    for job_id, due in zip(ids, _schedule(rate, len(ids)), strict=True):
        _sleep_until(due)
        stamp = int(time.time() * 1000)
        pipeline.paced.produce_event(topic, job_id, timestamp_ms=stamp)
        sent[job_id] = stamp / 1000
    pipeline.paced.flush()
    return sent


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
