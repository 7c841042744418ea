"""7. Tracing overhead: end-to-end `noop` jobs with tracing off, tracing on and no hooks at all.

Three pipelines side by side, each its own topic, Celery queue, job database, `jobexec bridge`
and `jobexec worker` (prefork, same concurrency), alike but for tracing:

- off: no `configs.tracing.otlp-endpoint`, the default; every hook is one branch;
- on: spans exported over OTLP/HTTP to a sink in this process that accepts `/v1/traces` (the
  worker's default batch processor; the JobEvents carry no trace context, so each try's span is
  a root, as under a scheduler that does not trace);
- no hooks: bridge and worker run by `bench.hookless`, every hook of `jobexec.core.tracing`
  replaced by a function that does nothing.

After a warm-up burst on each, rounds are interleaved: each round offers one burst of N
JobEvents to each pipeline in turn (the order rotated every round, one pipeline busy at a
time), and a rate is N over the time from the burst's start to the last job's COMPLETED row, as
in measurement 2; beside it, the CPU time bridge and worker (pool included) spent per job,
which other load on the machine disturbs far less than a rate. Ratios are against no hooks,
each the median of the per-round ratios (a round's three bursts run close together, so a
drifting machine load mostly cancels out); `spread` is each figure's (max - min) / median.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.profiles import Profile
from bench.results import Measurement, Target, ratio
from bench.stack import (
    Deployment,
    EventProducer,
    Stack,
    finish_times,
    finished_count,
    insert_jobs,
    new_ids,
    status_count,
    wait_for,
)
from jobexec.testing.http_recorder import HttpRecorder
from jobexec.testing.processes import RunningProcess

OFF = "jobexec, tracing off (default)"
ON = "jobexec, tracing on (OTLP export)"
NO_HOOKS = "jobexec, tracing hooks removed"
HOOKLESS = [sys.executable, "-m", "bench.hookless"]
WARM_UP = 50
NOOP = {"task": "noop"}
CPU = " CPU per job"  # suffix of each side's CPU-time figure


@dataclass
class _Side:
    """One of the three pipelines."""

    label: str
    key: str
    deployment: Deployment
    worker: RunningProcess
    bridge: RunningProcess


def run(stack: Stack, profile: Profile, concurrency: int) -> Measurement:
    m = Measurement("tracing_overhead", "7 tracing overhead (e2e)")
    count, rounds = profile.tracing_events, profile.tracing_rounds
    load_before = os.getloadavg()
    sink = HttpRecorder()
    sink.start()
    producer = EventProducer(stack.bootstrap, linger_ms=5)
    sides = _start(stack, concurrency, sink.url(""))
    try:
        for side in sides:
            _burst(producer, side, f"job_trw_{side.key}_", WARM_UP)
        # Figures in a fixed order, whatever order the rounds run in.
        for side in sides:
            m.figure(side.label, "jobs/s")
        for side in sides:
            m.figure(side.label + CPU, "CPU ms")
        not_completed = 0
        for rep in range(rounds):
            shift = rep % len(sides)
            for side in sides[shift:] + sides[:shift]:
                prefix = f"job_tr{rep}_{side.key}_"
                cpu_before = _cpu_seconds(side)
                rate = _burst(producer, side, prefix, count)
                cpu_ms = (_cpu_seconds(side) - cpu_before) * 1000 / count
                m.figure(side.label, "jobs/s").samples.append(rate)
                m.figure(side.label + CPU, "CPU ms").samples.append(cpu_ms)
                store = side.deployment.job_store()
                not_completed += count - status_count(store, prefix, "COMPLETED")
        expected_spans = WARM_UP + rounds * count
        exported = _wait_for_spans(sink, expected_spans)
    finally:
        for side in sides:
            stack.stop(side.bridge)
            stack.stop_worker(side.worker)
        del producer
        sink.stop()
    m.details = {
        "events_per_round": count,
        "rounds": rounds,
        "warm_up_events": WARM_UP,
        "worker_pool": "prefork",
        "concurrency": concurrency,
        "jobs_not_completed": not_completed,
        "spans_expected": expected_spans,
        "spans_exported": exported,
        "load_average_1_5_15": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "spread": {f.label: _spread(f.samples) for f in m.figures},
        "ratios": {
            "rate, tracing off / no hooks": _paired(m, OFF, NO_HOOKS),
            "rate, tracing on / no hooks": _paired(m, ON, NO_HOOKS),
            "CPU per job, tracing off / no hooks": _paired(m, OFF + CPU, NO_HOOKS + CPU),
            "CPU per job, tracing on / no hooks": _paired(m, ON + CPU, NO_HOOKS + CPU),
        },
    }
    m.targets.append(
        Target(
            "tracing off rate >= 0.95 x hooks removed (per round)",
            _paired(m, OFF, NO_HOOKS),
            ">=",
            0.95,
        )
    )
    m.targets.append(
        Target(
            "tracing off CPU/job <= 1.05 x hooks removed (per round)",
            _paired(m, OFF + CPU, NO_HOOKS + CPU),
            "<=",
            1.05,
        )
    )
    return m


def _paired(m: Measurement, label: str, baseline: str) -> float:
    """The median over rounds of `label`'s sample over `baseline`'s in the same round."""
    ours = next(f.samples for f in m.figures if f.label == label)
    theirs = next(f.samples for f in m.figures if f.label == baseline)
    ratios = [ratio(a, b) for a, b in zip(ours, theirs, strict=True)]
    return round(statistics.median(ratios), 4) if ratios else 0.0


def _cpu_seconds(side: _Side) -> float:
    """User and system CPU time of the side's bridge and worker, pool children included."""
    total = 0.0
    for pid in (side.worker.pid, side.bridge.pid):
        try:
            parent = psutil.Process(pid)
            for process in (parent, *parent.children(recursive=True)):
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _start(stack: Stack, concurrency: int, endpoint: str) -> list[_Side]:
    """The three pipelines, started together and waited for together."""
    plans: list[tuple[str, str, dict[str, str], list[str] | None]] = [
        (OFF, "off", {}, None),
        (ON, "on", {"configs.tracing.otlp-endpoint": endpoint}, None),
        (NO_HOOKS, "none", {}, HOOKLESS),
    ]
    sides: list[_Side] = []
    for label, key, overrides, launcher in plans:
        deployment = stack.deploy(partitions=3, database=True)
        worker = stack.worker(
            deployment, concurrency, wait=False, overrides=overrides, launcher=launcher
        )
        bridge = stack.bridge(deployment, wait=False, launcher=launcher)
        sides.append(_Side(label, key, deployment, worker, bridge))
    for side in sides:
        stack.worker_ready(side.worker)
        stack.bridge_ready(side.bridge, side.deployment)
    return sides


def _burst(producer: EventProducer, side: _Side, prefix: str, count: int) -> float:
    """Offer `count` JobEvents at once; jobs/s until the last one's terminal state."""
    store = side.deployment.job_store()
    ids = new_ids(prefix, count)
    insert_jobs(store, ids, NOOP)
    started = time.time()
    producer.produce_events(side.deployment.topics.topic, ids)
    producer.flush()
    wait_for(
        f"{count} {prefix}* jobs to finish (worker log: {side.worker.log_path})",
        lambda: finished_count(store, prefix) >= count,
        timeout=60 + count / 20,
        interval=0.1,
    )
    finished = finish_times(store, prefix)
    return count / (max(finished.values()) - started)


def _spans(sink: HttpRecorder) -> int:
    total = 0
    for call in sink.calls("/v1/traces"):
        request = ExportTraceServiceRequest()
        request.ParseFromString(call.body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                total += len(scope.spans)
    return total


def _wait_for_spans(sink: HttpRecorder, expected: int, timeout: float = 20.0) -> int:
    """The spans the traced worker exported, once all came or `timeout` passed (its batch
    processor sends every 5 s; a full queue drops spans, which this then shows)."""
    deadline = time.monotonic() + timeout
    while (seen := _spans(sink)) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
    return seen


def _spread(samples: list[float]) -> float:
    middle = statistics.median(samples) if samples else 0.0
    return round((max(samples) - min(samples)) / middle, 4) if middle else 0.0
