"""Concurrency caps (contract section 10) through the real bridge and worker processes."""

from __future__ import annotations

import itertools
import re

import pytest

from jobexec.testing.stack import Stack

SLEEPS = ("job_sleep_1", "job_sleep_2", "job_sleep_3")


def test_given_a_cap_of_1_when_three_sleeps_arrive_at_once_then_they_run_one_after_another(
    stack: Stack,
) -> None:
    # Given a cap of 1 on sleep and a worker with 4 thread slots
    stack.configure(overrides={"configs.executors.sleep.concurrency": "1"})
    stack.start("bridge", "worker", pool="threads", concurrency=4)
    for job_id in SLEEPS:
        stack.insert(job_id, {"task": "sleep", "seconds": 1})

    # When their three JobEvents arrive together
    for job_id in SLEEPS:
        stack.kafka.produce_event(job_id, attempt=1)

    # Then each completes at its first attempt, with one try each
    for job_id in SLEEPS:
        row = stack.wait_status(job_id, "COMPLETED", "FAILED", timeout=60)
        assert (row["status"], row["attempts"]) == ("COMPLETED", 1), row
    runs = {job_id: stack.store.runs(job_id) for job_id in SLEEPS}
    assert all(
        [(r["attempt"], r["status"]) for r in tries] == [(1, "SUCCEEDED")]
        for tries in runs.values()
    ), runs
    # And no two tries ran at the same time
    spans = sorted((tries[0]["started_at"], tries[0]["finished_at"]) for tries in runs.values())
    for (_, earlier_end), (later_start, _) in itertools.pairwise(spans):
        assert earlier_end <= later_start, spans
    # And the worker said why the others waited
    deferred = re.findall(r"job_sleep_\d deferred: ", stack.log("worker"))
    assert deferred, stack.log("worker")


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_given_a_bad_cap_when_the_worker_starts_then_it_exits_2_naming_key_and_file(
    stack: Stack, value: str
) -> None:
    stack.configure()
    key = "configs.executors.sleep.concurrency"
    with stack.config_files.app_path.open("a") as app:
        app.write(f"{key}={value}\n")

    done = stack.cli.run("worker", "--pool", "solo", env=stack.env, timeout=60)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("jobexec:")]
    assert key in line and str(stack.config_files.app_path) in line, done.stderr
