"""Run control (contract section 9) through the real processes: time limits in every worker
pool, cancel of a running try, pause and resume, bad limits.

The executors that hang or ignore being told to stop are test plugins (jobexec/testing/plugins.py),
registered through the `jobexec.executors` entry-point group as a third party would.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest

from jobexec.testing.plugins import with_test_executors
from jobexec.testing.stack import Stack, db_now, http_payload
from jobexec.testing.waiting import wait_until

GRACE_MS = 2000  # configs.executors.cancel-grace-ms of these deployments
LIMIT_S = 1.5
LIMIT_REASON = "run exceeded its time limit of 1.5 s"
HOURLY = "0 0 * * * *"


def deploy(stack: Stack, tmp_path: Path, **overrides: str) -> None:
    """Configure a deployment with 2 tries per run and the test executors registered."""
    stack.configure(
        overrides={
            "configs.retry.max-attempts": "2",
            "configs.executors.cancel-grace-ms": str(GRACE_MS),
            **overrides,
        }
    )
    stack.env = with_test_executors(stack.env, tmp_path / "plugins")


def worker_pid(run: dict[str, Any]) -> int:
    """The pid in job_runs.worker (`celery@host/pid`): the process that executed the try."""
    return int(str(run["worker"]).rsplit("/", 1)[1])


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_job(stack: Stack, job_id: str, payload: dict[str, Any]) -> None:
    """A job as the scheduler leaves it (RUNNING, attempt 1) and its JobEvent."""
    stack.insert(job_id, payload)
    stack.kafka.produce_event(job_id, attempt=1)


def wait_try_started(stack: Stack, job_id: str) -> dict[str, Any]:
    runs = stack.wait_runs(job_id, lambda runs: len(runs) == 1, timeout=30)
    return runs[0]


# --- time limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["prefork", "threads", "gevent"])
def test_given_a_hung_executor_when_its_limit_passes_then_the_try_is_retried_then_exhausted(
    stack: Stack, tmp_path: Path, pool: str
) -> None:
    # Given a worker of this pool, and a job whose executor never returns and ignores stop
    deploy(stack, tmp_path)
    stack.start("bridge", "worker", pool=pool)
    start_job(stack, "job_hang", {"task": "hang", "max_run_seconds": LIMIT_S})

    # When each try runs past the job's limit
    row = stack.wait_status("job_hang", "FAILED", "COMPLETED", timeout=60)

    # Then each try ended as a transient failure naming the limit, was retried, and the run
    # was exhausted: ONE_TIME FAILED, not left RUNNING
    assert row["status"] == "FAILED"
    assert row["failure_reason"] == f"attempts exhausted after 2 tries: {LIMIT_REASON}"
    assert row["attempts"] == 2
    runs = stack.store.runs("job_hang")
    assert [(r["attempt"], r["status"], r["error"]) for r in runs] == [
        (1, "RETRYING", LIMIT_REASON),
        (2, "EXHAUSTED", row["failure_reason"]),
    ]
    for run in runs:  # each try recorded once its limit passed, well before the grace ran out
        held = (run["finished_at"] - run["started_at"]).total_seconds()
        assert LIMIT_S <= held < LIMIT_S + GRACE_MS / 1000, runs
    [letter] = stack.kafka.consume_all(stack.kafka.dlt, expected=1, timeout=10)
    assert letter.key == b"job_hang"

    worker = stack.processes["worker"]
    if pool == "prefork":
        # And the pool children that held the hung tries were ended, the worker itself lives;
        # their requeued messages came back as stale duplicates and were dropped
        pids = {worker_pid(r) for r in runs}
        wait_until(
            lambda: not any(alive(pid) for pid in pids),
            GRACE_MS / 1000 + 10,
            message=lambda: f"pool children {pids} still alive\n{worker.log()}",
        )
        assert worker.pid not in pids and worker.running()
        assert worker.log().count("ending worker process") == 2
        stack.wait_for_drop("job_hang", times=2)
    elif pool == "gevent":
        # And the greenlets of the hung tries were ended after the grace, freeing their slots
        wait_until(
            lambda: worker.log().count("ending its greenlet") >= 2,
            GRACE_MS / 1000 + 10,
            message=worker.log,
        )
    else:
        # And the hung tries were abandoned after the grace (a thread cannot be ended)
        wait_until(
            lambda: worker.log().count("abandoned") >= 2,
            GRACE_MS / 1000 + 10,
            message=worker.log,
        )
    assert stack.row("job_hang")["status"] == "FAILED"
    assert len(stack.store.runs("job_hang")) == 2


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_given_a_task_limit_when_a_try_ignoring_stop_passes_it_then_its_late_success_is_void(
    stack: Stack, tmp_path: Path, pool: str
) -> None:
    # Given a per-task limit of 1 s, and an executor that ignores stop and succeeds after 3 s
    deploy(stack, tmp_path, **{"configs.executors.stubborn.max-run-seconds": "1"})
    stack.start("bridge", "worker", pool=pool)
    start_job(stack, "job_stubborn", {"task": "stubborn", "seconds": 3})

    # When both tries run past the limit (in solo, the second once the first came back)
    row = stack.wait_status("job_stubborn", "FAILED", "COMPLETED", timeout=60)

    # Then the run is exhausted by the limit, and the tries' late successes changed nothing
    assert row["status"] == "FAILED"
    assert row["failure_reason"] == (
        "attempts exhausted after 2 tries: run exceeded its time limit of 1 s"
    )
    worker = stack.processes["worker"]
    wait_until(
        lambda: worker.log().count("a second one is ignored") >= 2,
        15,
        message=worker.log,
    )
    runs = stack.store.runs("job_stubborn")
    assert [(r["status"], r["error"]) for r in runs] == [
        ("RETRYING", "run exceeded its time limit of 1 s"),
        ("EXHAUSTED", row["failure_reason"]),
    ]
    assert stack.row("job_stubborn")["status"] == "FAILED"


@pytest.mark.parametrize("value", [0, -1, "30", True])
def test_given_a_bad_limit_in_the_payload_when_the_job_runs_then_it_fails_permanently(
    stack: Stack, tmp_path: Path, value: Any
) -> None:
    deploy(stack, tmp_path)
    stack.start("bridge", "worker")
    start_job(stack, "job_bad_limit", {"task": "stubborn", "max_run_seconds": value})

    row = stack.wait_status("job_bad_limit", "FAILED", "COMPLETED", timeout=30)

    assert row["status"] == "FAILED"
    assert "payload.max_run_seconds" in row["failure_reason"]
    assert row["attempts"] == 1
    assert [r["status"] for r in stack.store.runs("job_bad_limit")] == ["FAILED"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("configs.executors.max-run-seconds", "0"),
        ("configs.executors.max-run-seconds", "-5"),
        ("configs.executors.max-run-seconds", "an hour"),
        ("configs.executors.sleep.max-run-seconds", "0"),
        ("configs.executors.sleep.max-run-seconds", "ten"),
        ("configs.executors.cancel-grace-ms", "-1"),
    ],
)
def test_given_a_bad_limit_setting_when_the_worker_starts_then_it_exits_2_naming_key_and_file(
    stack: Stack, key: str, value: str
) -> None:
    stack.configure()
    with stack.config_files.app_path.open("a") as app:  # after `db upgrade`, which checks it too
        app.write(f"{key}={value}\n")

    done = stack.cli.run("worker", "--pool", "solo", env=stack.env, timeout=60)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("jobexec:")]
    assert key in line and str(stack.config_files.app_path) in line, done.stderr


# --- cancel ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "task"), [("prefork", "sleep"), ("threads", "sleep"), ("prefork", "http")]
)
def test_given_a_running_built_in_job_when_cancelled_then_its_try_stops_and_is_recorded_cancelled(
    stack: Stack, tmp_path: Path, pool: str, task: str
) -> None:
    # Given a sleep of a minute, or an http call answered after a minute, running; the default
    # grace of 10 s
    stack.configure()
    stack.start("bridge", "worker", pool=pool)
    stack.http.delay("/slow", 60)
    payload = (
        {"task": "sleep", "seconds": 60}
        if task == "sleep"
        else http_payload(stack.http.url("/slow"), timeout_seconds=120)
    )
    start_job(stack, "job_sleep", payload)
    run = wait_try_started(stack, "job_sleep")
    assert run["status"] == "RUNNING"

    # When it is cancelled, without --force
    cancelled_at = db_now(stack)
    done = stack.cli.run("jobs", "cancel", "job_sleep", env=stack.env)

    # Then the row is CANCELLED at once
    assert done.returncode == 0, done.stderr
    assert "told to stop" in done.stdout
    assert stack.row("job_sleep")["status"] == "CANCELLED"
    # And its only try is stopped and recorded CANCELLED within the grace
    [run] = stack.wait_runs("job_sleep", lambda runs: runs[0]["status"] != "RUNNING", timeout=15)
    assert run["status"] == "CANCELLED"
    assert (run["finished_at"] - cancelled_at).total_seconds() < 10
    worker = stack.processes["worker"]
    if pool == "prefork":
        assert alive(worker_pid(run)), "a try that stopped does not cost its process"
    # And no further try runs
    time.sleep(2)
    assert len(stack.store.runs("job_sleep")) == 1
    assert stack.row("job_sleep")["status"] == "CANCELLED"
    assert "abandoned" not in worker.log()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_given_a_try_ignoring_stop_when_cancelled_then_it_is_ended_or_abandoned_in_the_grace(
    stack: Stack, tmp_path: Path, pool: str
) -> None:
    # Given a try whose executor ignores stop, for a minute
    deploy(stack, tmp_path)
    stack.start("bridge", "worker", pool=pool)
    start_job(stack, "job_stubborn", {"task": "stubborn", "seconds": 60})
    run = wait_try_started(stack, "job_stubborn")

    # When it is cancelled
    cancelled = time.monotonic()
    assert stack.cli.run("jobs", "cancel", "job_stubborn", env=stack.env).returncode == 0

    # Then the try is recorded CANCELLED, and within the grace its process is ended (prefork)
    # or the try abandoned (threads)
    [run] = stack.wait_runs("job_stubborn", lambda runs: runs[0]["status"] != "RUNNING")
    assert run["status"] == "CANCELLED"
    worker = stack.processes["worker"]
    if pool == "prefork":
        wait_until(lambda: not alive(worker_pid(run)), GRACE_MS / 1000 + 5, message=worker.log)
    else:
        wait_until(lambda: "abandoned" in worker.log(), GRACE_MS / 1000 + 5, message=worker.log)
    assert time.monotonic() - cancelled >= GRACE_MS / 1000 - 0.5  # it was given the grace
    assert worker.running()
    # And no further try runs
    time.sleep(2)
    assert len(stack.store.runs("job_stubborn")) == 1
    assert stack.row("job_stubborn")["status"] == "CANCELLED"


# --- pause and resume -----------------------------------------------------------------------


def test_given_paused_jobs_when_the_scheduler_runs_then_none_is_dispatched_until_resumed(
    stack: Stack,
) -> None:
    # Given a one-time job due now and a recurring job whose fire time has passed
    stack.configure()
    now = db_now(stack)
    past = now - timedelta(hours=3)
    stack.insert("job_once", {"task": "noop"}, status="SCHEDULED", attempts=0, next_run_at=now)
    stack.insert(
        "job_hourly",
        {"task": "noop"},
        status="SCHEDULED",
        attempts=0,
        job_type="RECURRING",
        cron=HOURLY,
        next_run_at=past,
    )
    stack.insert("job_done", {"task": "noop"}, status="COMPLETED")

    # When both are paused
    for job_id in ("job_once", "job_hourly"):
        done = stack.cli.run("jobs", "pause", job_id, env=stack.env)
        assert done.returncode == 0, done.stderr
        assert "paused" in done.stdout
        assert stack.row(job_id)["status"] == "PAUSED"

    # Then the scheduler dispatches neither
    stack.start("scheduler")
    time.sleep(2)
    assert stack.kafka.consume_all(stack.kafka.topic, expected=1, timeout=2) == []
    assert {stack.row(j)["status"] for j in ("job_once", "job_hourly")} == {"PAUSED"}

    # And the wrong state or an unknown job is one line and exit 1
    for args, says in (
        (("pause", "job_once"), "job job_once is PAUSED: only a SCHEDULED job can be paused"),
        (("resume", "job_done"), "job job_done is COMPLETED: only a PAUSED job can be resumed"),
        (("pause", "job_nope"), "no job job_nope"),
        (("resume", "job_nope"), "no job job_nope"),
    ):
        done = stack.cli.run("jobs", *args, env=stack.env)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.strip() == f"jobexec: {says}"

    # When they are resumed
    before = db_now(stack)
    for job_id in ("job_hourly", "job_once"):
        done = stack.cli.run("jobs", "resume", job_id, env=stack.env)
        assert done.returncode == 0, done.stderr
        assert "resumed" in done.stdout

    # Then the recurring one waits for its next fire time after now (no replay of the missed
    # fires), and the one-time one keeps its time and is dispatched
    hourly = stack.row("job_hourly")
    assert hourly["status"] == "SCHEDULED"
    assert before < hourly["next_run_at"] <= before + timedelta(hours=1)
    assert (hourly["next_run_at"].minute, hourly["next_run_at"].second) == (0, 0)
    once = stack.wait_status("job_once", "RUNNING", timeout=15)
    assert once["next_run_at"] == now
    [event] = stack.kafka.consume_all(stack.kafka.topic, expected=1, timeout=15)
    assert event.key == b"job_once"
    assert stack.row("job_hourly")["status"] == "SCHEDULED"
