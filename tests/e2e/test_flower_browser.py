"""Flower in a real browser: with the credentials it lists a finished job's task; without, no.

Headless Chromium (Debian's `chromium`, installed by scripts/test.sh) loads the page, runs its
JavaScript and leaves the DOM and a screenshot behind.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import javaproperties

from jobexec.testing.commands import basic_auth, status_of
from jobexec.testing.network import free_port
from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.waiting import wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
USER, PASSWORD = "ops", "flower-s3cret"


def chromium(url: str, profile: Path, *mode: str) -> str:
    assert CHROMIUM, "chromium is not installed: scripts/test.sh installs Debian's package"
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=8000",  # let the tasks table fetch its rows
            "--window-size=1400,900",
            *mode,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    return done.stdout


def test_flower_lists_a_finished_jobs_task_behind_basic_auth(stack: Stack, tmp_path: Path) -> None:
    # Given a worker, Flower with credentials from secrets.properties, and a finished job.
    port = free_port()
    stack.configure(
        overrides={"configs.flower.address": "127.0.0.1", "configs.flower.port": str(port)}
    )
    app = javaproperties.loads(stack.config_files.app_path.read_text())
    secrets = {"secrets.flower.username": USER, "secrets.flower.password": PASSWORD}
    stack.env = stack.config_files.write(app, secrets)
    stack.start("bridge", "worker")
    flower = stack.cli.start("flower", env=stack.env, name="flower")
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: status_of(base + "/", (USER, PASSWORD)) == 200, 60, message=flower.log)
    stack.insert("job_seen_in_flower", http_payload(stack.http.url("/ok")))
    stack.kafka.produce_event("job_seen_in_flower", attempt=1)
    stack.wait_status("job_seen_in_flower", "COMPLETED")
    # Flower learns of tasks from the workers' events.
    wait_until(
        lambda: (
            "job_seen_in_flower"
            in urllib.request.urlopen(
                urllib.request.Request(
                    base + "/api/tasks",
                    headers={"Authorization": "Basic " + basic_auth(USER, PASSWORD)},
                ),
                timeout=5,
            )
            .read()
            .decode()
        ),
        30,
        message="Flower never saw the task",
    )

    # When a browser opens the tasks page with the credentials.
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{port}/tasks"
    dom = chromium(url, tmp_path / "profile-dom", "--dump-dom")
    shot = tmp_path / "flower-tasks.png"
    chromium(url, tmp_path / "profile-shot", f"--screenshot={shot}")

    # Then the page lists the task with the job id, and a screenshot was taken.
    assert "jobexec.execute_job" in dom
    assert "job_seen_in_flower" in dom
    assert shot.stat().st_size > 10_000

    # And without credentials Flower refuses the page.
    assert status_of(base + "/tasks", None) == 401
    anonymous = chromium(f"{base}/tasks", tmp_path / "profile-anon", "--dump-dom")
    assert "job_seen_in_flower" not in anonymous
    assert "jobexec.execute_job" not in anonymous
