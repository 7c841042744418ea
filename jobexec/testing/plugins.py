"""Test-only executors, registered the way a third party registers one.

`with_test_executors(env, directory)` writes a distribution's metadata (`*.dist-info` with an
`entry_points.txt` for the group `jobexec.executors`) into `directory` and puts it and this
checkout on PYTHONPATH: the real registry of a `jobexec` subprocess then finds them through
importlib.metadata, with no change to the project and nothing installed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from executors import Executor, JobRun

CHECKOUT = Path(__file__).resolve().parents[2]


class HangExecutor(Executor):
    """`hang`: never returns, and ignores being told to stop."""

    task = "hang"

    def execute(self, run: JobRun) -> None:
        while True:
            time.sleep(0.5)


class StubbornExecutor(Executor):
    """`stubborn`: ignores being told to stop; succeeds after `payload.seconds`."""

    task = "stubborn"

    def execute(self, run: JobRun) -> None:
        until = time.monotonic() + float(run.payload.get("seconds", 0))
        while time.monotonic() < until:
            time.sleep(0.1)


ENTRY_POINTS = {
    "hang": f"{__name__}:HangExecutor",
    "stubborn": f"{__name__}:StubbornExecutor",
}


def with_test_executors(env: Mapping[str, str], directory: Path) -> dict[str, str]:
    """The environment `env` with the test executors registered for subprocesses."""
    dist_info = directory / "jobexec_test_executors-0.1.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: jobexec-test-executors\nVersion: 0.1\n"
    )
    lines = "".join(f"{name} = {target}\n" for name, target in ENTRY_POINTS.items())
    (dist_info / "entry_points.txt").write_text(f"[jobexec.executors]\n{lines}")
    paths = [str(directory), str(CHECKOUT), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}
