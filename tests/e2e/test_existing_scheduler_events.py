"""JobEvents published the way the existing scheduler publishes them, run by bridge + worker.

No `jobexec scheduler` here: each test claims the row itself (RUNNING, attempts 1), as the
neighbouring scheduler does, and produces the JobEvent keyed by the job id.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.waiting import wait_until


def _event_json(job_id: str, attempt: int, scheduled_at_literal: str) -> str:
    # A literal, so the scheduledAt text is exactly what a Java producer writes.
    return f'{{"jobId": {json.dumps(job_id)}, "attempt": {attempt}, "scheduledAt": ' + (
        f"{scheduled_at_literal}}}"
    )


def test_given_events_in_each_scheduled_at_form_when_bridge_and_worker_run_then_each_job_runs_once(
    stack: Stack,
) -> None:
    # Given bridge + worker, and three claimed one-time http jobs
    stack.configure()
    stack.start("bridge", "worker")
    forms = {
        # Jackson/Instant ISO text, nanoseconds and Z
        "job_iso": json.dumps(datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")),
        # Jackson's default: epoch seconds with a nanosecond fraction
        "job_epoch_s": f"{int(time.time())}.123456789",
        # epoch milliseconds
        "job_epoch_ms": str(int(time.time() * 1000)),
    }
    for job_id in forms:
        stack.insert(job_id, http_payload(stack.http.url(f"/{job_id}")))

    # When the JobEvents arrive (one with an unknown field and header, which are ignored)
    for job_id, literal in forms.items():
        value = _event_json(job_id, 1, literal)
        if job_id == "job_iso":
            value = value[:-1] + ', "traceId": "abc"}'
        stack.kafka.produce(job_id, value, headers={"X-Trace": b"abc"})

    # Then every job completes with exactly one call carrying the three headers
    for job_id in forms:
        stack.wait_status(job_id, "COMPLETED", "FAILED")
    for job_id in forms:
        row = stack.row(job_id)
        assert row["status"] == "COMPLETED", row
        calls = stack.http.calls(f"/{job_id}")
        assert len(calls) == 1, calls
        headers = calls[0].headers
        assert headers.get("X-Job-Id") == job_id
        assert headers.get("X-Job-Attempt") == "1"
        assert headers.get("Idempotency-Key")
        assert calls[0].json == {"hello": "world"}
        assert calls[0].method == "POST"
    keys = {stack.http.calls(f"/{j}")[0].headers["Idempotency-Key"] for j in forms}
    assert len(keys) == 3, "each run has its own idempotency key"


def test_given_duplicate_stale_and_unknown_events_then_nothing_runs_twice_and_no_row_changes(
    stack: Stack,
) -> None:
    # A short lease: a duplicate that finds the try's lease held looks again once it ran out
    stack.configure(
        overrides={"configs.lease.duration-ms": "3000", "configs.lease.heartbeat-ms": "1000"}
    )
    stack.start("bridge", "worker")

    # Given: a claimed job, a job whose current try is 1, a SCHEDULED job, and no job_ghost
    stack.insert("job_dup", http_payload(stack.http.url("/dup")))
    stack.insert("job_stale", http_payload(stack.http.url("/stale")))
    stack.insert("job_sched", http_payload(stack.http.url("/sched")), status="SCHEDULED")
    stale_before = stack.row("job_stale")
    sched_before = stack.row("job_sched")

    # When: the same event twice, an event for try 2, one for a SCHEDULED row, one for no row
    stack.kafka.produce_event("job_dup", attempt=1)
    stack.kafka.produce_event("job_dup", attempt=1)
    stack.kafka.produce_event("job_stale", attempt=2)
    stack.kafka.produce_event("job_sched", attempt=1)
    stack.kafka.produce_event("job_ghost", attempt=1)

    # Then the job ran
    stack.wait_status("job_dup", "COMPLETED", "FAILED")
    wait_until(lambda: stack.http.calls("/dup"), 10, message="job_dup never called its URL")
    # And the stale, the SCHEDULED and the unknown events were dropped and logged
    for job_id in ("job_stale", "job_sched", "job_ghost"):
        stack.wait_for_drop(job_id)
    # And a third copy delivered after completion is dropped too, as is the second one
    stack.kafka.produce_event("job_dup", attempt=1)
    stack.wait_for_drop("job_dup", times=2, timeout=20)
    time.sleep(1)

    assert stack.row("job_dup")["status"] == "COMPLETED"
    assert len(stack.http.calls("/dup")) == 1, stack.http.calls("/dup")
    assert stack.http.calls("/stale") == []
    assert stack.http.calls("/sched") == []
    assert stack.row("job_stale") == stale_before
    assert stack.row("job_sched") == sched_before, "a SCHEDULED row is never touched"
    assert stack.store.job_row("job_ghost") is None
    assert stack.store.runs("job_ghost") == []
    assert stack.store.runs("job_stale") == []
    assert stack.store.runs("job_sched") == []
