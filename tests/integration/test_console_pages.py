"""The console's pages in-process (Starlette's test client) on a real SQLite job database:
what a page must never show (credentials, unescaped markup), and paging links."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, make_url
from starlette.testclient import TestClient

from jobexec.console.app import PAGE_SIZE, create_app
from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import job_runs
from jobexec.core.db.store import JobStore

AUTH = {"Authorization": "Basic b3BzOnMzY3JldA=="}  # ops:s3cret
LEAKY = "POST http://svc:hunter2@api.test/hook answered HTTP 500"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    built = JobStore(make_engine(make_url(f"sqlite:///{tmp_path / 'jobs.db'}")))
    upgrade(built.engine)
    try:
        yield built
    finally:
        built.engine.dispose()


@pytest.fixture
def client(store: JobStore, tmp_path: Path) -> TestClient:
    settings = Settings.load(
        {
            "CONFIGS_JOBDB_URL": f"sqlite:///{tmp_path / 'jobs.db'}",
            "SECRETS_CONSOLE_USERNAME": "ops",
            "SECRETS_CONSOLE_PASSWORD": "s3cret",
        }
    )
    return TestClient(create_app(settings, store), headers=AUTH)


def test_a_jobs_page_shows_no_credential_and_escapes_markup(
    store: JobStore, client: TestClient
) -> None:
    store.insert_jobs(
        [
            {
                "job_id": "job_<img src=x onerror=alert(1)>",
                "job_type": "ONE_TIME",
                "payload": {
                    "task": "http",
                    "url": "http://svc:hunter2@api.test/hook",
                    "headers": {"X-Api-Key": "k-123456", "Authorization": "Bearer tok-98765"},
                },
                "status": "FAILED",
                "failure_reason": LEAKY,
            }
        ]
    )
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            insert(job_runs).values(
                job_id="job_<img src=x onerror=alert(1)>",
                run_at=now,
                attempt=1,
                worker="w",
                status="EXHAUSTED",
                started_at=now,
                lease_expires_at=now,
                finished_at=now,
                error=LEAKY,
            )
        )
    listing = client.get("/jobs")
    job = client.get("/jobs/job_%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert listing.status_code == 200 and job.status_code == 200
    for page in (listing.text, job.text):
        assert "hunter2" not in page
        assert "<img" not in page
    assert "k-123456" not in job.text and "tok-98765" not in job.text
    assert "svc:***@api.test" in job.text
    assert "EXHAUSTED" in job.text


def test_a_missing_job_is_404_and_pages_link_to_the_next(
    store: JobStore, client: TestClient
) -> None:
    assert client.get("/jobs/job_nope").status_code == 404
    base = datetime(2030, 1, 1, tzinfo=UTC)
    store.insert_jobs(
        [
            {
                "job_id": f"job_{i:03d}",
                "job_type": "ONE_TIME",
                "payload": {"task": "noop"},
                "status": "SCHEDULED",
                "next_run_at": base + timedelta(seconds=i),
            }
            for i in range(PAGE_SIZE + 5)
        ]
    )
    first = client.get("/jobs?status=SCHEDULED")
    assert first.text.count('<tr>\n      <td><a href="/jobs/job_') == PAGE_SIZE
    found = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert found is not None
    second = client.get(html.unescape(found.group(1)))
    assert second.text.count('<tr>\n      <td><a href="/jobs/job_') == 5
    assert "job_054" in second.text and "job_000" not in second.text
    assert 'rel="next"' not in second.text
