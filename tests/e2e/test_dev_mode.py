"""`jobexec dev`: everything on one machine, the demo job runs, and nothing is left behind."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobexec.testing.config_files import clean_environment
from jobexec.testing.processes import Cli
from jobexec.testing.waiting import wait_until


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
    dev.wait_for_log(r"bridge, worker, scheduler and Flower started", timeout=60)
    # (so the final check can see children: they do mention the folder while they run)
    assert len(_processes_mentioning(str(dev_dir))) >= 3

    code = dev.proc.wait(120)

    output = dev.log()
    assert code == 0, output
    assert "Traceback" not in output, output
    demo_tries = [
        line
        for line in output.splitlines()
        if re.search(r"job_demo-heartbeat\s+try \d+\s+SUCCEEDED\s*$", line)
    ]
    assert demo_tries, f"no line shows a SUCCEEDED try of the demo job\n{output}"
    assert _processes_mentioning(str(dev_dir)) == [], "a child of jobexec dev outlived it"


def _basic_auth_status(url: str, user: str | None, password: str | None) -> int:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def test_given_dev_running_when_a_newcomer_submits_the_printed_job_then_it_runs_and_shows(
    cli: Cli, dev_dir: Path
) -> None:
    # Given `jobexec dev`, as the README's Quickstart starts it
    dev = cli.start("dev", "--dir", str(dev_dir), "--for", "60", env=clean_environment())
    dev.wait_for_log(r"Flower started", timeout=60)
    printed = dev.log()
    location = re.search(r"export EXECUTOR_CONFIG_LOCATION=(\S+)", printed)
    flower = re.search(
        r"Flower\s+(http://127\.0\.0\.1:\d+/)\s+user (\S+)\s+password (\S+)", printed
    )
    metrics = re.search(r"worker (http://127\.0\.0\.1:\d+/metrics)", printed)
    assert location and flower and metrics, printed

    # When the newcomer runs the printed submit command from another terminal
    env = {**clean_environment(), "EXECUTOR_CONFIG_LOCATION": location.group(1)}
    submitted = cli.run("jobs", "submit", "--task", "sleep", "--payload", '{"seconds": 2}', env=env)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = submitted.stdout.strip().split()[-1]

    # Then the view shows the job COMPLETED, and `jobs show` agrees
    dev.wait_for_log(rf"{re.escape(job_id)}\s+ONE_TIME\s+COMPLETED", timeout=40)
    shown = cli.run("jobs", "show", job_id, env=env)
    assert "COMPLETED" in shown.stdout, shown.stdout + shown.stderr
    # And Flower answers with the printed login only
    url, user, password = flower.groups()
    assert _basic_auth_status(url, None, None) == 401
    assert _basic_auth_status(url, user, password) == 200
    # And the worker's metrics count the try
    assert wait_until(
        lambda: (
            'jobexec_job_outcomes_total{result="success",task="sleep"}'
            in urllib.request.urlopen(metrics.group(1), timeout=5).read().decode()
        ),
        15,
        message="the worker's metrics never counted a sleep success",
    )
    dev.stop(signal.SIGINT, timeout=30)
