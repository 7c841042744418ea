"""A plain Celery app whose one task makes the `http` executor's call: the I/O-bound baseline.

The broker and worker settings of `bench.raw_celery_app` (JSON, `acks_late`, prefetch 1, task
events on) and an httpx client per process as a Celery user would write it (no redirects, no
proxy variables, httpx's default connection pool). The task POSTs the JSON body with the job's
headers, fails on a non-2xx answer, then pushes `[sent_at, finished_at]` onto the `report`
Redis list, so the harness can time the drain.

    celery -A bench.raw_http_app worker --queues QUEUE --pool threads --concurrency 64
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
import redis

from bench.raw_celery_app import BROKER_ENV, create_app

RAW_HTTP_TASK = "bench.raw_http"

app = create_app(os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/0"))
_clients: dict[int, tuple[httpx.Client, redis.Redis]] = {}


def _clients_of_this_process() -> tuple[httpx.Client, redis.Redis]:
    # Made in the pool process (prefork children must not share the parent's sockets), once
    # for all its threads or greenlets.
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        http = httpx.Client(follow_redirects=False, trust_env=False)
        _clients[pid] = (http, redis.Redis.from_url(app.conf.broker_url))
    return _clients[pid]


@app.task(name=RAW_HTTP_TASK)  # type: ignore[untyped-decorator]
def raw_http(
    url: str,
    job_id: str,
    attempt: int = 1,
    body: Any = None,
    sent_at: float | None = None,
    report: str | None = None,
    **_kwargs: Any,
) -> None:
    """POSTs `body` to `url`; raises on a non-2xx status; reports when `report` is given."""
    http, reports = _clients_of_this_process()
    response = http.post(
        url,
        json=body,
        headers={
            "X-Job-Id": job_id,
            "X-Job-Attempt": str(attempt),
            "Idempotency-Key": f"{job_id}:{attempt}",
        },
        timeout=10.0,
    )
    response.raise_for_status()
    if report:
        reports.rpush(report, json.dumps([sent_at, time.time()]))
