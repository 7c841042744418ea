"""Worker loss without a scheduler: bridge and workers only, as beside the neighbouring scheduler.

The whole worker is killed with SIGKILL while it runs slow http jobs and a new one is started
at once. No sweeper runs: the new worker's rescuer takes the dead worker's tries over once
their lease expired (contract section 9: within the lease plus 30 s). The dead worker's task
messages, put back on the queue as after Redis's visibility timeout, are then dropped as stale.
"""

from __future__ import annotations

import time

import pytest

from jobexec.testing.events import event_record
from jobexec.testing.redis_queue import expire_visibility
from jobexec.testing.waiting import wait_until
from tests.chaos.conftest import EXEC_PATH, ChaosStack, job_ids, scaled

pytestmark = pytest.mark.chaos

LEASE_S = 6.0
BOUND_S = LEASE_S + 30  # contract section 9
CALL_S = 1.0
CONCURRENCY = 4  # the worker's pool, as ChaosStack.launch starts it


def test_given_no_scheduler_when_the_whole_worker_is_killed_9_then_its_tries_are_rescued_within_the_bound(  # noqa: E501
    chaos: ChaosStack,
) -> None:
    # Given a bridge and a worker, no scheduler, and a queue of slow http jobs
    private_redis = chaos.use_private_redis()
    ids = job_ids("loss", scaled(80))
    work_s = len(ids) * CALL_S / CONCURRENCY  # the whole stream on one worker
    chaos.configure_chaos(
        {
            "configs.lease.duration-ms": str(int(LEASE_S * 1000)),
            "configs.lease.heartbeat-ms": "2000",
        }
    )
    chaos.http.delay(EXEC_PATH, CALL_S)
    chaos.insert_http_jobs(ids)
    first = chaos.launch("worker", concurrency=CONCURRENCY)
    chaos.launch("bridge")
    chaos.stream([event_record(j) for j in ids], per_second=200).join()

    # When the whole worker (main process and pool) is killed with SIGKILL mid-stream
    wait_until(lambda: len(chaos.http.calls(EXEC_PATH)) >= len(ids) // 4, 60, interval=0.1)
    wait_until(lambda: len(chaos.unfinished_runs()) >= 2, 30, interval=0.05)
    cut_off = {str(run["job_id"]) for run in chaos.unfinished_runs()}
    killed_at = time.monotonic()
    first.kill()
    # And a new worker starts at once
    chaos.launch("worker", concurrency=CONCURRENCY)

    # Then every cut-off try is taken over within the bound: recorded LOST, try 2 published
    # (it then waits its turn behind the jobs still queued, like any try)
    def cut_off_taken_over() -> bool:
        states = chaos.job_states()
        return all(states[j][1] >= 2 for j in cut_off)

    def cut_off_completed() -> bool:
        states = chaos.job_states()
        return all(states[j][0] == "COMPLETED" for j in cut_off)

    def trace() -> str:
        return str(chaos.trace(sorted(cut_off)))

    wait_until(cut_off_taken_over, BOUND_S + 30, interval=0.1, message=trace)
    taken_over_s = time.monotonic() - killed_at
    wait_until(cut_off_completed, work_s + 60, interval=0.2, message=trace)
    completed_s = time.monotonic() - killed_at
    settled = chaos.wait_settled(len(ids), timeout=work_s + 60)

    # And the dead worker's unacknowledged tasks, back on the queue, are dropped as stale
    redelivered = expire_visibility(private_redis.url)
    wait_until(
        lambda: chaos.worker_logs().count("stale or duplicate event") >= len(cut_off),
        30,
        interval=0.2,
        message="the dead worker's redelivered tasks were not dropped",
    )
    figures = chaos.verdict(
        "worker_loss_no_scheduler",
        ids,
        len(ids),
        killed_at,
        settled,
        cut_off=cut_off,
        cut_off_runs=len(cut_off),
        taken_over_s=round(taken_over_s, 1),
        cut_off_completed_s=round(completed_s, 1),
        redelivered=redelivered,
    )
    assert taken_over_s < BOUND_S, f"cut-off tries taken over {taken_over_s:.1f}s after the kill"
    assert redelivered >= len(cut_off), f"{redelivered} unacknowledged for {len(cut_off)} tries"
    states = chaos.job_states()
    assert {states[j][1] for j in cut_off} == {2}, "cut-off runs were rescued as try 2"
    for job_id in sorted(cut_off):
        statuses = [r["status"] for r in chaos.store.runs(job_id)]
        assert statuses == ["LOST", "SUCCEEDED"], (job_id, statuses)
    assert figures.extra["cut_off_reexec"] <= len(cut_off)
    assert not any("scheduler" in p.argv for p in chaos.cli.processes), "no sweeper ran"
