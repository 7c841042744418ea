"""A plain Celery app and no-op task: the ceiling jobexec's bridge and workers are held against.

Same broker, serializer and worker settings as jobexec (JSON, `acks_late`, prefetch 1, task
events on, as a deployment monitored by Flower needs, the prefork pool chosen on the command
line), nothing else: no database. The task
reports `[sent_at, started_at]` to a Redis list when asked, so the harness can time it; the
task does nothing else, so its start is also its end. `bench.minimal_pipeline` sends it with
the Kafka record's create time as `sent_at`.

    celery -A bench.raw_celery_app worker --queues QUEUE --pool prefork --concurrency N
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import Celery

RAW_TASK = "bench.raw_noop"
BROKER_ENV = "BENCH_RAW_BROKER_URL"


def create_app(broker_url: str) -> Celery:
    app = Celery("bench_raw", set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # The same worker configuration as jobexec's: workers send task events (Flower).
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
    )
    return app


app = create_app(os.environ.get(BROKER_ENV, "redis://127.0.0.1:6379/0"))
_clients: dict[int, redis.Redis] = {}


def _client() -> redis.Redis:
    # One connection per pool process: prefork children must not share the parent's socket.
    pid = os.getpid()
    if pid not in _clients:
        _clients.clear()
        _clients[pid] = redis.Redis.from_url(app.conf.broker_url)
    return _clients[pid]


@app.task(name=RAW_TASK)  # type: ignore[untyped-decorator]
def raw_noop(sent_at: float | None = None, report: str | None = None, **_kwargs: Any) -> None:
    """Does nothing; with `report`, pushes `[sent_at, started_at]` onto that Redis list."""
    if report:
        _client().rpush(report, json.dumps([sent_at, time.time()]))


def raw_kwargs(n: int, sent_at: float | None = None, report: str | None = None) -> dict[str, Any]:
    """Task arguments shaped like the bridge's `jobexec.execute_job` ones."""
    return {
        "job_id": f"job_raw_{n:07d}",
        "attempt": 1,
        "scheduled_at": "2026-01-01T00:00:00+00:00",
        "origin": {"topic": "job-events", "partition": n % 3, "offset": n},
        "sent_at": sent_at,
        "report": report,
    }
