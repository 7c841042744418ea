"""Workers under fire: a pool child or the whole worker killed mid-run, a task delivered twice.

The http endpoint answers slowly, so the kills land while jobs run. A run cut off by a kill may
execute a second time (the contract's one exception); every other run executes exactly once.
"""

from __future__ import annotations

import time

import pytest

from jobexec.testing.events import event_record
from jobexec.testing.redis_queue import expire_visibility
from jobexec.testing.waiting import wait_until
from tests.chaos.conftest import (
    EXEC_PATH,
    SHORT_LEASE,
    ChaosStack,
    job_ids,
    scaled,
)
from tests.chaos.faults import child_pids, sigkill

pytestmark = pytest.mark.chaos

SLOW_CALL_S = 3.0


def _busy_children(chaos: ChaosStack, worker_pid: int) -> dict[int, list[str]]:
    """Pool children of this worker that hold an unfinished run right now -> its jobs."""
    children = set(child_pids(worker_pid))
    busy: dict[int, list[str]] = {}
    for run in chaos.unfinished_runs():
        pid = int(str(run["worker"]).rsplit("/", 1)[-1])
        if pid in children:
            busy.setdefault(pid, []).append(str(run["job_id"]))
    return busy


def test_given_long_jobs_when_a_pool_child_is_killed_9_then_all_complete_and_only_cut_runs_rerun(
    chaos: ChaosStack,
) -> None:
    # Given a worker of 4 children running slow http jobs
    ids = job_ids("child", scaled(16))
    chaos.configure_chaos(SHORT_LEASE)
    chaos.http.delay(EXEC_PATH, SLOW_CALL_S)
    chaos.insert_http_jobs(ids)
    worker = chaos.launch("worker", concurrency=4)
    chaos.launch("bridge")
    chaos.stream([event_record(j) for j in ids], per_second=200).join()

    # When a busy child is killed with SIGKILL, twice, in two different waves of jobs
    cut_off: set[str] = set()
    kills: list[float] = []
    for wave in (1, 2):
        calls_wanted = 4 * wave
        wait_until(
            lambda n=calls_wanted: len(chaos.http.calls(EXEC_PATH)) >= n,  # type: ignore[misc]
            60,
            interval=0.1,
            message="the jobs did not start",
        )
        busy = wait_until(
            lambda: _busy_children(chaos, worker.pid), 30, interval=0.1, message="no busy child"
        )
        pid, jobs = sorted(busy.items())[0]
        kills.append(time.monotonic())
        sigkill(pid)
        cut_off.update(jobs)
        time.sleep(SLOW_CALL_S + 0.5)  # the next wave

    # Then every job completes; the cut-off runs ran at most twice, every other one once
    settled = chaos.wait_settled(len(ids), timeout=90)
    figures = chaos.verdict(
        "worker_child_kill9", ids, len(ids), kills[-1], settled, cut_off=cut_off, kills=len(kills)
    )
    assert figures.extra["cut_off_reexec"] <= len(cut_off)
    assert worker.running(), "the worker itself survives the loss of a child"


def test_given_long_jobs_when_the_whole_worker_is_killed_9_then_the_sweeper_recovers_its_runs(
    chaos: ChaosStack,
) -> None:
    # Given the scheduler (and its sweeper), a bridge and a worker running slow http jobs
    ids = job_ids("whole", scaled(8))
    chaos.configure_chaos(
        {
            **SHORT_LEASE,
            "configs.sweeper.abandoned-after-ms": "8000",
            "configs.sweeper.interval-ms": "500",
            # The sweeper's path: test_worker_loss.py covers the workers' own rescue.
            "configs.lease.rescue-interval-ms": "0",
        }
    )
    chaos.http.delay(EXEC_PATH, SLOW_CALL_S)
    first = chaos.launch("worker", concurrency=4)
    chaos.launch("bridge")
    chaos.launch("scheduler")
    chaos.insert_http_jobs(ids, status="SCHEDULED")

    # When the whole worker (main process and pool) is killed with SIGKILL mid-run
    wait_until(lambda: len(chaos.http.calls(EXEC_PATH)) >= 4, 60, interval=0.1)
    cut_off = {str(run["job_id"]) for run in chaos.unfinished_runs()}
    killed_at = time.monotonic()
    first.kill()
    # And a new worker starts
    chaos.launch("worker", concurrency=4)

    # Then every job completes: the cut-off runs through the sweeper's re-dispatch (their
    # messages stay unacknowledged in Redis until the visibility timeout), the others once
    settled = chaos.wait_settled(len(ids), timeout=90)
    figures = chaos.verdict(
        "worker_kill9",
        ids,
        len(ids),
        killed_at,
        settled,
        cut_off=cut_off,
        cut_off_runs=len(cut_off),
    )
    assert cut_off, "the kill landed while runs were in flight"
    states = chaos.job_states()
    assert {states[j][1] for j in cut_off} == {2}, "cut-off runs were re-dispatched as try 2"
    assert figures.extra["cut_off_reexec"] <= len(cut_off)


def test_given_a_running_job_when_the_visibility_timeout_redelivers_its_task_then_it_runs_once(
    chaos: ChaosStack,
) -> None:
    # Given a private Redis broker, and slow jobs running on a worker with free children
    chaos.use_private_redis()
    ids = job_ids("redeliver", 2)
    chaos.configure_chaos(SHORT_LEASE)
    chaos.http.delay(EXEC_PATH, 2 * SLOW_CALL_S)
    chaos.insert_http_jobs(ids)
    chaos.launch("worker", concurrency=4)
    chaos.launch("bridge")
    chaos.stream([event_record(j) for j in ids], per_second=100).join()
    wait_until(lambda: len(chaos.http.calls(EXEC_PATH)) >= len(ids), 60, interval=0.1)

    # When their visibility timeout passes while they still run: the unacknowledged messages
    # go back on the queue, exactly as kombu's restore_visible does it, and are delivered again
    redelivered_at = time.monotonic()
    restored = expire_visibility(chaos.redis.url)

    # Then each job completes, executed once: the second delivery waits out the live lease
    # and is dropped once the run has finished
    settled = chaos.wait_settled(len(ids), timeout=60)
    wait_until(
        lambda: chaos.worker_logs().count("stale or duplicate event") >= len(ids),
        30,
        interval=0.2,
        message="the second deliveries were not dropped",
    )
    figures = chaos.verdict(
        "visibility_redelivery", ids, len(ids), redelivered_at, settled, redelivered=restored
    )
    assert restored == len(ids), f"{restored} unacknowledged messages for {len(ids)} running jobs"
    assert figures.extra["deferred_by_lease"] >= len(ids), chaos.worker_logs()[-3000:]


HANG_LIMIT_S = 2.0
HANG_GRACE_MS = 2000


def test_given_runs_hanging_in_their_executor_when_their_limit_passes_then_they_are_recovered(
    chaos: ChaosStack,
) -> None:
    # Given a worker of 4 children, and http jobs limited to 2 s each
    ids = job_ids("hang", scaled(12))
    chaos.configure_chaos({"configs.executors.cancel-grace-ms": str(HANG_GRACE_MS)})
    chaos.insert_http_jobs(ids, max_run_seconds=HANG_LIMIT_S, timeout_seconds=900)
    worker = chaos.launch("worker", concurrency=4)
    chaos.launch("bridge")

    # When the endpoint hangs (it answers after 10 minutes) for the first 4 calls, which fill
    # every child, and answers at once afterwards
    chaos.http.delay(EXEC_PATH, 600)
    chaos.stream([event_record(j) for j in ids], per_second=200).join()
    wait_until(lambda: len(chaos.http.calls(EXEC_PATH)) >= 4, 60, interval=0.05)
    hung_at = time.monotonic()
    chaos.http.delay(EXEC_PATH, 0)
    hung = {c.headers["X-Job-Id"] for c in chaos.http.calls(EXEC_PATH)}

    # Then every job completes: the hung tries end at their limit as transient failures and
    # their runs complete on the second try; every other run executes once
    settled = chaos.wait_settled(len(ids), timeout=90)
    figures = chaos.verdict(
        "executor_hang",
        ids,
        len(ids),
        hung_at,
        settled,
        cut_off=hung,
        hung_tries=len(hung),
        limit_s=HANG_LIMIT_S,
        grace_s=HANG_GRACE_MS / 1000,
    )
    assert len(hung) == 4
    states = chaos.job_states()
    assert {states[j][1] for j in hung} == {2}, "each hung run completed on its second try"
    for job_id in hung:
        first = chaos.store.runs(job_id)[0]
        assert first["error"] == "run exceeded its time limit of 2 s", first
    assert figures.extra["cut_off_reexec"] == len(hung)
    # The bound: the limit, the grace before a child that ignores stop is ended, and a margin
    # for the retry backoff and a new child's start
    assert figures.recovery_s is not None
    assert figures.recovery_s < HANG_LIMIT_S + HANG_GRACE_MS / 1000 + 20
    assert worker.running()
