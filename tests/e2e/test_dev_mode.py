"""`jobexec dev`: everything on one machine, the demo job runs, and nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.config_files import clean_environment
from tests.support.processes import Cli


def _processes_mentioning(marker: str) -> list[int]:
    """Our processes whose command line or environment contains `marker`."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        for part in ("cmdline", "environ"):
            with contextlib.suppress(OSError):
                if needle in (entry / part).read_bytes():
                    found.append(int(entry.name))
                    break
    return found


@pytest.fixture
def dev_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / f"dev-{uuid.uuid4().hex[:8]}"
    yield folder
    # Whatever the test found, leave no process of this run behind (by pid: ours only).
    for pid in _processes_mentioning(str(folder)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def test_given_nothing_installed_when_dev_runs_for_25s_then_the_demo_job_succeeds_and_all_stop(
    cli: Cli, dev_dir: Path
) -> None:
    dev = cli.start("dev", "--dir", str(dev_dir), "--for", "25", env=clean_environment())
    dev.wait_for_log(r"bridge, worker and scheduler started", timeout=60)
    # (so the final check can see children: they do mention the folder while they run)
    assert len(_processes_mentioning(str(dev_dir))) >= 3

    code = dev.proc.wait(120)

    output = dev.log()
    assert code == 0, output
    assert "Traceback" not in output, output
    demo_lines = [
        line
        for line in output.splitlines()
        if "job_demo-heartbeat" in line and re.search(r"\bSUCCEEDED\s*$", line)
    ]
    assert demo_lines, f"no line shows a SUCCEEDED run of the demo job\n{output}"
    runs = [
        int(m.group(1)) for m in (re.search(r"(\d+)\s+SUCCEEDED\s*$", x) for x in demo_lines) if m
    ]
    assert max(runs) >= 1, demo_lines
    assert _processes_mentioning(str(dev_dir)) == [], "a child of jobexec dev outlived it"
