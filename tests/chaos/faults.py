"""Fault injectors for the chaos scenarios: processes, PostgreSQL, Redis, lost messages.

Nothing here touches the shared PostgreSQL or Redis servers beyond one test database's own
connections: a database outage is a TCP proxy that stops forwarding
(`jobexec.testing.network.TcpProxy`), a Redis restart is a private `redis-server` (AOF, fsync
always, as compose runs it; `jobexec.testing.redis_server.PrivateRedis`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import psycopg
import redis

from jobexec.testing.postgres import ADMIN_URL

# The test's own database connections carry this name, so terminating backends spares them.
TEST_APPLICATION_NAME = "jobexec-chaos-test"


# --- processes ---------------------------------------------------------------------------------


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (the prefork pool of a `jobexec worker`), from /proc."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.extend(int(p) for p in children.read_text().split())
    return sorted(set(found))


def sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --- PostgreSQL --------------------------------------------------------------------------------


def terminate_backends(db_name: str) -> int:
    """pg_terminate_backend on every connection to `db_name` except the test's own."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid() AND application_name <> %s",
            (db_name, TEST_APPLICATION_NAME),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


# --- Redis -------------------------------------------------------------------------------------


def message_job_id(raw: bytes | str) -> str | None:
    """The job id in a kombu/Celery message as stored in a Redis list (protocol 2, JSON)."""
    try:
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        kwargs: dict[str, Any] = body[1]
        return str(kwargs["job_id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def delete_messages(client: redis.Redis, queue: str, job_ids: set[str]) -> set[str]:
    """Remove the waiting Celery messages of these jobs from the queue; returns whose went."""
    deleted: set[str] = set()
    raws: list[bytes] = client.lrange(queue, 0, -1)  # type: ignore[assignment]
    for raw in raws:
        job_id = message_job_id(raw)
        if job_id in job_ids and client.lrem(queue, 1, raw):  # type: ignore[arg-type]
            deleted.add(job_id)
    return deleted


def locate_messages(client: redis.Redis, queue: str, job_ids: set[str]) -> dict[str, list[str]]:
    """Where the Celery messages of these jobs are in Redis: the queue, or `unacked` (delivered
    to a worker, not yet acknowledged; redelivered only after the visibility timeout)."""
    found: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
    raws: list[bytes] = client.lrange(queue, 0, -1)  # type: ignore[assignment]
    for raw in raws:
        job_id = message_job_id(raw)
        if job_id in found:
            found[job_id].append("queue")
    unacked: dict[bytes, bytes] = client.hgetall("unacked")  # type: ignore[assignment]
    for tag, entry in unacked.items():
        try:
            job_id = message_job_id(json.dumps(json.loads(entry)[0]))
        except (ValueError, IndexError, TypeError):
            continue
        if job_id in found:
            found[job_id].append(f"unacked:{tag.decode()}")
    return found
