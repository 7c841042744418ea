"""The benchmark harness keeps working: its smoke profile runs every measurement end to end.

A few hundred events against real Tansu, PostgreSQL and Redis. Nothing here asserts a time or a
ratio (the machine running CI decides those); only that each measurement ran and was written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MEASUREMENTS = (
    "bridge_throughput",
    "end_to_end",
    "latency",
    "scale_out",
    "memory",
    "scheduler",
    "tracing_overhead",
    "rabbitmq_throughput",
    "growth",
    "io_bound",
)
THROUGHPUTS = ("events/s", "msgs/s", "records/s", "jobs/s", "tasks/s")


# Ten measurements; tracing starts three pipelines, growth two, the I/O-bound one eight workers.
@pytest.mark.timeout(790)
def test_given_the_smoke_profile_when_the_harness_runs_then_every_measurement_is_written(
    tmp_path: Path,
) -> None:
    # When the harness runs its smoke profile
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=770,
        check=False,
    )

    # Then it completes and writes the JSON and the chart
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-8000:]
    data = json.loads((tmp_path / "smoke.json").read_text())
    assert (tmp_path / "smoke.png").stat().st_size > 0
    assert data["errors"] == {}
    assert data["machine"]["cores"] >= 1

    # And every measurement is present, each figure measured, every throughput positive
    assert set(data["measurements"]) == set(MEASUREMENTS)
    for key, measurement in data["measurements"].items():
        assert measurement["figures"], key
        for label, figure in measurement["figures"].items():
            assert figure["samples"], f"{key}: {label} has no sample"
            if figure["unit"] in THROUGHPUTS:
                assert all(s > 0 for s in figure["samples"]), f"{key}: {label} {figure}"
    # And the table names the machine beside the figures
    assert f"{data['machine']['cores']} cores" in done.stdout
