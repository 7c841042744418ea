"""`python -m bench [--quick|--smoke|--soak] [--out DIR]`: run each measurement, one at a time.

Starts Tansu, uses the local PostgreSQL, Redis and (for `rabbitmq`) RabbitMQ (fresh databases
and queue names, removed after), starts the jobexec processes, prints a table of medians and
target ratios, and writes `<out>/<profile>.json` and `<out>/<profile>.png`; process logs go to
`<out>/<profile>-logs/`.
Exit status 1 when a measurement could not complete (the others still run and are written).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import (
    bridge_throughput,
    end_to_end,
    growth,
    io_bound,
    latency,
    memory,
    rabbitmq_throughput,
    scale_out,
    scheduler_rate,
    tracing_overhead,
)
from bench.pipeline import Pipeline
from bench.profiles import PROFILES, Profile
from bench.results import Measurement, table, to_json, write_json
from bench.stack import Stack, machine

KEYS = (
    "bridge",
    "e2e",
    "latency",
    "scale",
    "memory",
    "scheduler",
    "tracing",
    "rabbitmq",
    "growth",
    "io",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller runs (about 20 minutes in all)")
    size.add_argument("--smoke", action="store_true", help="a few hundred events (CI)")
    size.add_argument(
        "--soak",
        action="store_true",
        help="memory over 1,000,000 events (with --only bridge memory; not in CI)",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="[bench/results]")
    p.add_argument(
        "--concurrency",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes for end-to-end, latency and memory [cores]",
    )
    p.add_argument(
        "--only", nargs="+", choices=KEYS, default=list(KEYS), help="run only these measurements"
    )
    return p


def chosen_profile(args: argparse.Namespace) -> Profile:
    """The profile the size flags pick; `full` without one."""
    for name in ("smoke", "quick", "soak"):
        if getattr(args, name):
            return PROFILES[name]
    return PROFILES["full"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    profile = chosen_profile(args)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    host = machine()
    stack = Stack(out / f"{profile.name}-logs")
    measurements: list[Measurement] = []
    errors: dict[str, str] = {}
    began = time.monotonic()

    def attempt(key: str, measure: Callable[[], Measurement]) -> Measurement | None:
        if key not in args.only:
            return None
        print(f"[{time.monotonic() - began:6.0f}s] {key} ...", file=sys.stderr, flush=True)
        try:
            result = measure()
        except Exception as exc:
            errors[key] = "".join(traceback.format_exception(exc))
            print(f"{key} failed: {exc}", file=sys.stderr, flush=True)
            return None
        measurements.append(result)
        return result

    try:
        stack.start()
        bridge = attempt("bridge", lambda: bridge_throughput.run(stack, profile))
        if {"e2e", "latency"} & set(args.only):
            pipeline = Pipeline(stack, args.concurrency)
            try:
                e2e = attempt("e2e", lambda: end_to_end.run(pipeline, profile))
                capacity = e2e.median(end_to_end.JOBEXEC) if e2e else 0.0
                if capacity:
                    attempt("latency", lambda: latency.run(pipeline, profile, capacity))
                elif "latency" in args.only:
                    errors["latency"] = "needs the end-to-end capacity, which was not measured"
            finally:
                pipeline.close()
        attempt("scale", lambda: scale_out.run(stack, profile))
        bridge_rss = bridge.details["bridge_rss_mb"] if bridge else None
        attempt("memory", lambda: memory.run(stack, profile, args.concurrency, bridge_rss))
        attempt("scheduler", lambda: scheduler_rate.run(stack, profile))
        attempt("tracing", lambda: tracing_overhead.run(stack, profile, args.concurrency))
        attempt("rabbitmq", lambda: rabbitmq_throughput.run(stack, profile))
        attempt("growth", lambda: growth.run(stack, profile, args.concurrency))
        attempt("io", lambda: io_bound.run(stack, profile))
    finally:
        stack.close()

    print(table(measurements, host, profile.name))
    data = to_json(measurements, host, profile.as_dict())
    data["errors"] = errors
    data["elapsed_seconds"] = round(time.monotonic() - began, 1)
    json_path = out / f"{profile.name}.json"
    write_json(json_path, data)
    png_path = out / f"{profile.name}.png"
    from bench.chart import draw

    draw(data, png_path)
    print(f"\nwrote {json_path} and {png_path} in {data['elapsed_seconds']:.0f}s")
    for key, text in errors.items():
        print(f"\n{key} FAILED:\n{text}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
