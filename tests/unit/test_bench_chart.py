"""The benchmark chart draws whatever a run measured, `--only` one measurement included."""

from __future__ import annotations

import statistics
import warnings
from pathlib import Path
from typing import Any

from bench.chart import draw

MACHINE = {"cores": 2, "cpu": "test"}


def run(profile: str, measurements: dict[str, Any]) -> dict[str, Any]:
    """A results file as `python -m bench` writes it."""
    return {"machine": MACHINE, "profile": {"name": profile}, "measurements": measurements}


def figure(unit: str, *samples: float) -> dict[str, Any]:
    return {"unit": unit, "median": statistics.median(samples), "samples": list(samples)}


def test_given_a_run_of_one_measurement_without_targets_when_drawn_then_the_png_is_written(
    tmp_path: Path,
) -> None:
    # Given `python -m bench --only scheduler`: one rate, no ratio target
    rate = figure("jobs/s", 14_000.0, 15_000.0, 16_000.0)
    data = run(
        "quick",
        {"scheduler": {"figures": {"jobexec scheduler (batch 500)": rate}, "targets": []}},
    )
    # When it is drawn
    path = tmp_path / "quick.png"
    draw(data, path)
    # Then the chart is there
    assert path.stat().st_size > 10_000


def test_given_targets_held_and_missed_when_drawn_then_the_png_is_written(tmp_path: Path) -> None:
    target = {"comparison": ">=", "threshold": 0.8, "unit": "x"}
    data = run(
        "full",
        {
            "end_to_end": {
                "figures": {},
                "targets": [
                    {**target, "label": "held", "measured": 1.2, "holds": True},
                    {**target, "label": "missed", "measured": 0.5, "holds": False},
                ],
            },
            "memory": {
                "figures": {
                    "bridge before": figure("MB", 80.0),
                    "bridge after": figure("MB", 81.0),
                },
                "details": {"bridge_events": 1_000_000},
            },
        },
    )
    path = tmp_path / "full.png"
    draw(data, path)
    assert path.stat().st_size > 10_000


def test_given_a_memory_only_soak_when_drawn_then_no_empty_panel_warns(tmp_path: Path) -> None:
    # Given `python -m bench --soak --only memory`: memory figures, no rate, latency or target
    data = run(
        "soak",
        {
            "memory": {
                "figures": {
                    "worker before (main + 2 pool)": figure("MB", 295.2),
                    "worker after (main + 2 pool)": figure("MB", 296.1),
                },
                "targets": [],
                "details": {"worker_events": 1_000_000},
            }
        },
    )
    path = tmp_path / "soak.png"
    # When it is drawn, with matplotlib's warnings (log axis of nothing, empty legend) as errors
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draw(data, path)
    # Then the chart is there
    assert path.stat().st_size > 10_000
