"""Self-healing workers (contract section 9): a try whose worker died is taken over by another
worker within `configs.lease.duration-ms` plus 30 s, with no `jobexec scheduler` running.

Bridge and worker only, as beside the neighbouring scheduler: the test claims the row itself
(RUNNING, attempts 1) and produces the JobEvent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobexec.testing.redis_queue import RedisBroker, expire_visibility
from jobexec.testing.redis_server import PrivateRedis
from jobexec.testing.stack import Stack
from jobexec.testing.waiting import wait_until

LEASE_S = 6.0
BOUND_S = LEASE_S + 30  # contract section 9
SLEEP_S = 4.0


@pytest.fixture
def private_redis(stack: Stack, tmp_path: Path) -> Iterator[PrivateRedis]:
    """The stack's Celery broker on a redis-server of this test alone: its unacknowledged
    messages may be put back on the queue without touching other tests' tasks."""
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    stack.redis = RedisBroker(url=server.url, queue=stack.redis.queue)
    try:
        yield server
    finally:
        stack.close()
        server.stop()


def start_worker(stack: Stack, pool: str) -> None:
    """`jobexec worker` in this pool, as stack.processes["worker"], once it is ready."""
    worker = stack.cli.start(
        *("worker", "--concurrency", "2", "--pool", pool, "--loglevel", "INFO"),
        env=stack.env,
        name=f"worker-{pool}",
    )
    stack.processes["worker"] = worker
    worker.wait_for_log(r"celery@\S+ ready", timeout=60)


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo", "gevent"])
def test_given_bridge_and_worker_only_when_the_whole_worker_is_killed_9_mid_run_then_a_new_worker_completes_it_within_the_bound(  # noqa: E501
    stack: Stack, private_redis: PrivateRedis, pool: str
) -> None:
    # Given bridge + worker with a short lease and every other rescue setting at its default
    stack.configure(
        overrides={
            "configs.lease.duration-ms": str(int(LEASE_S * 1000)),
            "configs.lease.heartbeat-ms": "2000",
        }
    )
    stack.start("bridge")
    start_worker(stack, pool)
    first = stack.processes["worker"]
    first.wait_for_log(r"taking over tries whose lease expired")
    stack.insert("job_sleepy", {"task": "sleep", "seconds": SLEEP_S})
    stack.kafka.produce_event("job_sleepy", attempt=1)

    # When the whole worker (main process and pool) is killed with SIGKILL during the sleep
    stack.wait_runs("job_sleepy", lambda runs: len(runs) == 1 and runs[0]["status"] == "RUNNING")
    time.sleep(1)  # well inside the 4 s sleep
    first.kill()
    killed_at = time.monotonic()
    # And a new worker is started at once
    start_worker(stack, pool)

    # Then the job completes within the bound: try 1 recorded LOST, try 2 succeeded, once
    row = stack.wait_status("job_sleepy", "COMPLETED", "FAILED", timeout=BOUND_S + 10)
    recovered_s = time.monotonic() - killed_at
    print(f"\nRESCUE pool={pool} recovery_s={recovered_s:.1f} bound_s={BOUND_S:g}", flush=True)
    assert row["status"] == "COMPLETED", row
    assert recovered_s < BOUND_S, f"completed {recovered_s:.1f}s after the kill"
    runs = stack.store.runs("job_sleepy")
    assert [(r["attempt"], r["status"]) for r in runs] == [(1, "LOST"), (2, "SUCCEEDED")], runs
    assert row["attempts"] == 2
    # One rescuer per worker, in its main process: not one per pool child
    assert first.log().count("taking over tries whose lease expired") == 1

    # And the dead worker's task, back on the queue as after Redis's visibility timeout (kombu's
    # own restore, made due now), is dropped as stale: the finished try never executes again
    assert expire_visibility(private_redis.url) == 1
    new_worker = stack.processes["worker"]
    stale = re.compile(r"stale or duplicate event for job job_sleepy")
    wait_until(
        lambda: stale.search(new_worker.log()),
        30,
        interval=0.2,
        message=lambda: f"the redelivered task was not dropped\n{new_worker.log()[-3000:]}",
    )
    assert [r["status"] for r in stack.store.runs("job_sleepy")] == ["LOST", "SUCCEEDED"]
    assert stack.row("job_sleepy")["status"] == "COMPLETED"
