"""The whole service: `jobexec scheduler` claims due rows, the bridge and a worker run them."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from jobexec.testing.stack import STOP_BOUND_S, Stack, http_payload
from jobexec.testing.waiting import wait_until

# Contract 10: the pipeline holds on each broker jobexec supports.
pytestmark = pytest.mark.parametrize("celery_broker", ["redis", "rabbitmq"], indirect=True)


def test_given_due_jobs_when_the_full_pipeline_runs_then_one_time_jobs_complete_and_cron_repeats(
    stack: Stack,
) -> None:
    # Given bridge, worker and scheduler, and due SCHEDULED rows as the job API writes them
    stack.configure()
    stack.start("bridge", "worker", "scheduler")
    one_time = [f"job_due_{n}" for n in range(4)]
    for job_id in one_time[:2]:
        stack.insert(job_id, {"task": "noop"}, status="SCHEDULED", attempts=0)
    for job_id in one_time[2:]:
        stack.insert(
            job_id, http_payload(stack.http.url(f"/{job_id}")), status="SCHEDULED", attempts=0
        )
    stack.insert(
        "job_every_2s",
        http_payload(stack.http.url("/every-2s")),
        status="SCHEDULED",
        attempts=0,
        job_type="RECURRING",
        cron="*/2 * * * * *",
    )

    # Then every one-time job completes, each http one with one call
    for job_id in one_time:
        row = stack.wait_status(job_id, "COMPLETED", "FAILED")
        assert row["status"] == "COMPLETED", row
        assert row["attempts"] == 1
    for job_id in one_time[2:]:
        assert len(stack.http.calls(f"/{job_id}")) == 1

    # And the every-2-seconds job runs at least twice within ~10 s, each run succeeding
    runs = stack.wait_runs(
        "job_every_2s",
        lambda runs: sum(r["status"] == "SUCCEEDED" for r in runs) >= 2,
        timeout=12,
    )
    assert {r["status"] for r in runs} <= {"SUCCEEDED", "RUNNING"}, runs
    calls = stack.http.calls("/every-2s")
    assert len(calls) >= 2
    assert len({c.headers["Idempotency-Key"] for c in calls}) == len(calls), (
        "every run has its own idempotency key"
    )
    assert stack.row("job_every_2s")["status"] in {"SCHEDULED", "RUNNING"}


@pytest.mark.parametrize("pool", ["prefork", "threads", "gevent"])
def test_given_a_run_in_flight_when_sigterm_then_each_process_exits_0_in_10s_and_the_run_survives(
    stack: Stack, pool: str
) -> None:
    # Given the three processes, with a run that outlasts any graceful stop mid-way
    stack.configure(
        overrides={"configs.lease.duration-ms": "3000", "configs.lease.heartbeat-ms": "1000"}
    )
    stack.start("bridge", "worker", "scheduler", pool=pool)
    stack.insert("job_slow", {"task": "sleep", "seconds": 12}, status="SCHEDULED", attempts=0)
    stack.wait_runs("job_slow", lambda runs: bool(runs), timeout=20)

    # When each gets SIGTERM
    outcome = stack.stop_all()

    # Then each exits 0 within the contract's 10 s
    for name, (code, seconds) in outcome.items():
        assert code == 0, f"{name} exited {code}\n{stack.log(name)}"
        assert seconds <= STOP_BOUND_S, f"{name} took {seconds:.1f}s to stop"
    # And nothing of theirs is left: no pool child outlives the worker
    for name, process in stack.processes.items():
        pgid = process.pid
        wait_until(
            lambda pgid=pgid: not _group_alive(pgid),  # type: ignore[misc]
            5,
            message=f"a process of {name}'s group still runs after it exited",
        )
    # And the run was handed back, not failed: the row still waits for its try
    row = stack.row("job_slow")
    assert row["status"] in {"RUNNING", "COMPLETED"}, row
    if row["status"] == "RUNNING":
        # Try 1, handed back: a graceful stop spends no attempt, whatever rescuers see
        assert row["attempts"] == 1, row
        assert [r["status"] for r in stack.store.runs("job_slow")] == ["HANDED_BACK"]
        # And a new worker picks the handed-back task up and finishes the run
        stack.start("worker", pool=pool)
        row = stack.wait_status("job_slow", "COMPLETED", "FAILED", timeout=40)
        assert row["status"] == "COMPLETED", row


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_given_a_long_run_in_flight_when_the_worker_gets_sigint_then_it_stops_in_10s_like_sigterm(
    stack: Stack,
) -> None:
    # Given a try that runs far longer than the stop bound, on a worker with the default lease
    stack.configure()
    stack.start("bridge", "worker", "scheduler")
    stack.insert("job_long", {"task": "sleep", "seconds": 60}, status="SCHEDULED", attempts=0)
    stack.wait_runs("job_long", lambda runs: bool(runs), timeout=20)

    # When the worker gets one Ctrl-C (SIGINT), not SIGTERM (a second one is Celery's cold stop)
    worker = stack.processes["worker"]
    signalled = time.monotonic()
    worker.send_signal(signal.SIGINT)
    try:
        code = worker.proc.wait(STOP_BOUND_S + 5)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker still runs after SIGINT\n{stack.log('worker')}") from None
    seconds = time.monotonic() - signalled

    # Then it stops within the contract's 10 s, as for SIGTERM, instead of waiting for the try
    assert code == 0, stack.log("worker")
    assert seconds <= STOP_BOUND_S, f"worker took {seconds:.1f}s to stop\n{stack.log('worker')}"
    # And the try was handed back, not failed or finished
    row = stack.row("job_long")
    assert (row["status"], row["attempts"]) == ("RUNNING", 1), row
