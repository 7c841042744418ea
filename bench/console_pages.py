"""`python -m bench.console_pages [--rows N]`: the console's page times on a large `jobs` table.

Fills a fresh database on the local PostgreSQL with N jobs (1,000,000 by default; statuses,
types and tasks mixed as below), then times each jobs-list page through the console app
in-process (query and rendering, no network) and prints median and p95 per page. Not part of
`python -m bench`: it measures the console, not the pipeline.
"""

from __future__ import annotations

import argparse
import html
import re
import statistics
import time

import psycopg
from sqlalchemy import make_url
from starlette.testclient import TestClient

from jobexec.console.app import create_app
from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.store import JobStore
from jobexec.testing import postgres

FILL = """
INSERT INTO jobs (job_id, job_type, execution_mode, cron_expression, payload, status, attempts,
                  failure_reason, next_run_at, created_at, updated_at, created_by)
SELECT 'job_' || lpad(i::text, 7, '0'),
       CASE WHEN i % 10 = 0 THEN 'RECURRING' ELSE 'ONE_TIME' END,
       NULL,
       CASE WHEN i % 10 = 0 THEN '0 0 * * * *' END,
       jsonb_build_object('task', (ARRAY['http', 'noop', 'sleep', 'send_email'])[i % 4 + 1]),
       CASE WHEN i % 100 < 70 THEN 'COMPLETED' WHEN i % 100 < 90 THEN 'SCHEDULED'
            WHEN i % 100 < 95 THEN 'FAILED' WHEN i % 100 < 98 THEN 'CANCELLED'
            WHEN i % 100 < 99 THEN 'PAUSED' ELSE 'RUNNING' END,
       1,
       CASE WHEN i % 100 BETWEEN 90 AND 94 THEN 'HTTP 500' END,
       now() - interval '1 second' * ((i::bigint * 7919) % {rows}),
       now(), now(), 'bench'
FROM generate_series(1, {rows}) AS i
"""
PATTERN_INDEX = "CREATE INDEX jobs_job_id_pattern ON jobs (job_id text_pattern_ops)"
NEXT_LINK = re.compile(r'<a href="([^"]+)" rel="next">')
PAGES = {
    "first page, no filter": "/jobs",
    "status=FAILED": "/jobs?status=FAILED",
    "status=SCHEDULED, type=RECURRING": "/jobs?status=SCHEDULED&type=RECURRING",
    "task=send_email": "/jobs?task=send_email",
    "id prefix job_00042": "/jobs?id=job_00042",
    "job page": "/jobs/job_0424242",
}


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.console_pages")
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    name = postgres.create_database("jobexec_console_")
    try:
        run(name, args.rows, args.repeat)
    finally:
        postgres.drop_database(name)


def run(name: str, rows: int, repeat: int) -> None:
    url = postgres.sqlalchemy_url(name)
    store = JobStore(make_engine(make_url(url)))
    upgrade(store.engine)
    started = time.perf_counter()
    with psycopg.connect(postgres.libpq_url(name), autocommit=True) as conn:
        conn.execute(FILL.replace("{rows}", str(int(rows))).encode())
        conn.execute("ANALYZE jobs")
    print(f"{rows} jobs inserted in {time.perf_counter() - started:.1f} s")
    settings = Settings.load(
        {
            "CONFIGS_JOBDB_URL": url,
            "SECRETS_CONSOLE_USERNAME": "bench",
            "SECRETS_CONSOLE_PASSWORD": "bench",
        }
    )
    client = TestClient(
        create_app(settings, store), headers={"Authorization": "Basic YmVuY2g6YmVuY2g="}
    )
    pages = dict(PAGES)
    first = client.get("/jobs")
    deep = client.get("/jobs?status=COMPLETED")
    link = "/jobs?status=COMPLETED"
    for _ in range(200):  # 200 pages into the COMPLETED jobs
        found = NEXT_LINK.search(deep.text)
        assert found is not None, "no next page"
        link = html.unescape(found.group(1))
        deep = client.get(link)
    pages["status=COMPLETED, page 201"] = link
    assert first.status_code == 200
    print(f"{'page':<36} {'median ms':>10} {'p95 ms':>8}")
    time_pages(client, pages, repeat)
    # The index the README suggests for prefix search on job ids (jobexec never alters jobs).
    with psycopg.connect(postgres.libpq_url(name), autocommit=True) as conn:
        conn.execute(PATTERN_INDEX.encode())
    time_pages(client, {"id prefix, with the pattern index": PAGES["id prefix job_00042"]}, repeat)
    store.engine.dispose()


def time_pages(client: TestClient, pages: dict[str, str], repeat: int) -> None:
    for label, path in pages.items():
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            answer = client.get(path)
            times.append((time.perf_counter() - t0) * 1000)
            assert answer.status_code == 200, (path, answer.status_code)
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(f"{label:<36} {statistics.median(times):>10.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()
