"""The console in a real browser: headless Chromium (Debian's, driven by Playwright) against
`jobexec console`, a real PostgreSQL database, bridge and worker, Kafka (Tansu) and Redis.

Screenshots of the jobs list and a job's page are left in the test's folder; with
JOBEXEC_SCREENSHOTS=DIR they are also copied there (the README's are made with DIR=docs).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright, expect
from sqlalchemy import select

from jobexec.core.db.schema import dlq_replays
from jobexec.testing.network import free_port
from jobexec.testing.stack import Stack, http_payload

USER, PASSWORD = "ops", "console-s3cret"
SECRET_TOKEN = "Bearer do-not-show-me-4711"


def keep_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name} looks empty"
    wanted = os.environ.get("JOBEXEC_SCREENSHOTS")
    if wanted:
        shutil.copyfile(path, Path(wanted) / name)


def test_given_a_running_deployment_when_an_operator_uses_the_console_then_it_shows_and_acts(
    stack: Stack, browser: Browser, playwright: Playwright, tmp_path: Path
) -> None:
    # Given a deployment with bridge, worker and console
    port = free_port()
    stack.configure(
        overrides={
            "configs.console.port": str(port),
            "secrets.console.username": USER,
            "secrets.console.password": PASSWORD,
        }
    )
    stack.start("bridge", "worker")
    console = stack.cli.start("console", env=stack.env, name="console")
    console.wait_for_log(r"Uvicorn running on", timeout=30)
    base = f"http://127.0.0.1:{port}"

    # a job whose endpoint always fails: three tries, FAILED, dead-lettered
    stack.http.respond("/down", [500] * 3)
    down = http_payload(stack.http.url("/down"), headers={"Authorization": SECRET_TOKEN})
    stack.insert("job_down", down)
    stack.kafka.produce_event("job_down", attempt=1)
    # jobs that wait for tomorrow, and a sleep job that is running
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    for n in range(3):
        stack.insert(
            f"job_later_{n}",
            {"task": "noop"},
            status="SCHEDULED",
            attempts=0,
            next_run_at=tomorrow + timedelta(minutes=n),
        )
    stack.insert("job_sleep", {"task": "sleep", "seconds": 45})
    stack.kafka.produce_event("job_sleep", attempt=1)
    stack.wait_status("job_down", "FAILED", timeout=60)
    stack.wait_runs("job_sleep", lambda runs: any(r["status"] == "RUNNING" for r in runs))

    # Without credentials: 401
    anonymous = playwright.request.new_context()
    assert anonymous.get(f"{base}/jobs").status == 401
    assert (
        anonymous.get(f"{base}/jobs", headers={"Authorization": "Basic b3BzOndyb25n"}).status == 401
    )
    anonymous.dispose()

    context = browser.new_context(
        http_credentials={"username": USER, "password": PASSWORD},
        viewport={"width": 1400, "height": 900},
    )
    page = context.new_page()

    # When the operator logs in: every job is listed
    page.goto(f"{base}/jobs")
    rows = page.locator("table.jobs tbody tr")
    expect(rows).to_have_count(5)
    keep_screenshot(page, tmp_path, "console-jobs.png")

    # Filtering by status FAILED leaves only the failed job
    page.get_by_label("FAILED").check()
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("job_down")
    # and by id prefix, across statuses
    page.goto(f"{base}/jobs?id=job_later_")
    expect(rows).to_have_count(3)

    # The failed job's page shows its three tries, the payload's credentials masked
    page.goto(f"{base}/jobs?status=FAILED")
    page.get_by_role("link", name="job_down").click()
    expect(page.locator("#job-status")).to_have_text("FAILED")
    runs = page.locator("table.runs tbody tr")
    expect(runs).to_have_count(3)
    expect(runs.nth(0)).to_contain_text("EXHAUSTED")
    expect(runs.nth(2)).to_contain_text("RETRYING")
    expect(runs.nth(0)).to_contain_text("500")
    assert SECRET_TOKEN not in page.content()
    expect(page.locator("pre.payload")).to_contain_text('"Authorization": "***"')
    keep_screenshot(page, tmp_path, "console-job.png")

    # Cancelling the running sleep job: CANCELLED on the page and in the database
    page.goto(f"{base}/jobs/job_sleep")
    expect(page.locator("#job-status")).to_have_text("RUNNING")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-status")).to_have_text("CANCELLED")
    expect(page.locator(".flash.ok")).to_contain_text("job_sleep cancelled")
    assert stack.row("job_sleep")["status"] == "CANCELLED"

    # Pause and resume of a scheduled job; a paused job offers Resume, not Pause
    page.goto(f"{base}/jobs/job_later_1")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#job-status")).to_have_text("PAUSED")
    expect(page.locator(".flash.ok")).to_contain_text("job_later_1 paused (was SCHEDULED)")
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)
    assert stack.row("job_later_1")["status"] == "PAUSED"
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#job-status")).to_have_text("SCHEDULED")
    expect(page.locator(".flash.ok")).to_contain_text("job_later_1 resumed, next run")
    assert stack.row("job_later_1")["status"] == "SCHEDULED"

    # The dead letter of the failed job is listed and replayed once
    page.goto(f"{base}/dead-letters")
    letters = page.locator("table.dead-letters tbody tr")
    expect(letters).to_have_count(1)
    expect(letters.first).to_contain_text("job_down")
    letters.first.get_by_role("button", name="Replay").click()
    expect(page.locator(".flash.ok")).to_contain_text("replayed 1")
    expect(letters.first).to_contain_text("replayed")
    expect(letters.first.get_by_role("button", name="Replay")).to_have_count(0)
    with stack.store.engine.connect() as conn:
        assert len(conn.execute(select(dlq_replays)).all()) == 1
    replayed = [
        r
        for r in stack.kafka.consume_all(stack.kafka.topic, expected=3, timeout=10)
        if "jobexec-replayed-from" in r.headers
    ]
    assert len(replayed) == 1 and replayed[0].key == b"job_down"
    # the replay re-armed the job: the worker runs it again, and it succeeds this time
    stack.wait_status("job_down", "COMPLETED", timeout=60)

    # A cross-site POST (a page on another origin, in the same logged-in browser) is refused
    attacker = f"http://127.0.0.2:{free_port()}/"
    form = (
        f'<form method="post" action="{base}/jobs/job_later_0/cancel">'
        '<input type="hidden" name="csrf" value="guessed"><button>Win a prize</button></form>'
    )
    page.route(attacker, lambda route: route.fulfill(body=form, content_type="text/html"))
    page.goto(attacker)
    with page.expect_response(lambda r: r.url.endswith("/jobs/job_later_0/cancel")) as answer:
        page.get_by_role("button", name="Win a prize").click()
    assert answer.value.status == 403
    assert stack.row("job_later_0")["status"] == "SCHEDULED"
    context.close()

    # The page's headers forbid framing and inline scripts
    anonymous = playwright.request.new_context(
        http_credentials={"username": USER, "password": PASSWORD}
    )
    headers = anonymous.get(f"{base}/jobs").headers
    assert headers["x-frame-options"] == "DENY"
    assert "script-src" not in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"]
    anonymous.dispose()


def test_given_no_console_credentials_when_the_console_starts_then_it_exits_2_naming_the_key(
    stack: Stack,
) -> None:
    env = stack.configure(overrides={"secrets.console.username": USER})
    done = stack.cli.run("console", env=env, timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "secrets.console.password is missing" in lines[0]
    assert "Traceback" not in done.stderr
