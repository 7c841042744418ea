"""Flower in a real browser: with the credentials it lists a finished job's task; without, no.

Headless Chromium (Debian's `chromium`, driven by Playwright) loads the page, runs its
JavaScript and leaves a screenshot behind.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import javaproperties
import pytest
from playwright.sync_api import Browser, expect
from playwright.sync_api import Error as PlaywrightError

from jobexec.testing.commands import basic_auth, status_of
from jobexec.testing.network import free_port
from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.waiting import wait_until

USER, PASSWORD = "ops", "flower-s3cret"


def test_flower_lists_a_finished_jobs_task_behind_basic_auth(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
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
    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    try:
        page = context.new_page()
        page.goto(f"{base}/tasks")
        # Then the page lists the task with the job id (its table fills in by script).
        expect(page.get_by_text("job_seen_in_flower").first).to_be_visible(timeout=30_000)
        assert "jobexec.execute_job" in page.content()
        shot = tmp_path / "flower-tasks.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        context.close()

    # And without credentials Flower refuses the page.
    assert status_of(base + "/tasks", None) == 401
    anonymous = browser.new_context()
    try:
        page = anonymous.new_page()
        # Chromium ends a 401 that asks for credentials it does not have as a failed navigation.
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(f"{base}/tasks")
        # Nor does its API give the task away to the browser's anonymous requests.
        response = anonymous.request.get(f"{base}/api/tasks")
        assert response.status == 401
        assert "job_seen_in_flower" not in response.text()
    finally:
        anonymous.close()
