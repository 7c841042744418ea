"""Fault injectors for the chaos scenarios: processes, PostgreSQL, Redis, lost messages.

Nothing here touches the shared PostgreSQL or Redis servers beyond one test database's own
connections: a database outage is a TCP proxy that stops forwarding, a Redis restart is a
private `redis-server` (AOF, fsync always, as compose runs it) on a port of its own.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import IO, Any

import psycopg
import redis
from kombu.connection import Connection

from tests.support.network import TcpProxy as TcpProxy  # re-exported: it moved to support
from tests.support.network import free_port
from tests.support.postgres import ADMIN_URL
from tests.support.waiting import wait_until

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


class PrivateRedis:
    """A redis-server of this test only, with an append-only file fsynced on every write."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - closed in stop
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--dir",
                str(self.directory),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._answers, 15, interval=0.05, message=f"redis on {self.port} not up")

    def crash(self) -> None:
        """SIGKILL, as a crashed or OOM-killed server: only the append-only file survives."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5)

    def _answers(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise AssertionError(
                f"redis-server exited: {(self.directory / 'redis.log').read_text()}"
            )
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False


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


def expire_visibility(broker_url: str) -> int:
    """Do what any consumer does once a message's visibility timeout has passed: put every
    delivered but unacknowledged message back on its queue. Returns how many there were.

    kombu's own `QoS.restore_visible`, with a visibility timeout of 0, so the messages that a
    worker is running right now are delivered a second time while it still runs them.
    """
    with redis.Redis.from_url(broker_url) as client:
        unacked = int(client.hlen("unacked"))
    with Connection(  # type: ignore[no-untyped-call]
        broker_url, transport_options={"visibility_timeout": 0}
    ) as conn:
        channel: Any = conn.default_channel
        channel.qos.restore_visible(start=0, num=1000, interval=1)
    return unacked


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
