"""The outcomes table (contract section 5) through the real bridge and worker processes.

One deployment serves every scenario of a test; each job has its own URL path on the recorder.
This deployment reads its database from a JDBC URL with the user in secrets.properties, as the
existing deployment is configured.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobexec.testing.events import DLT_HEADERS
from jobexec.testing.stack import Stack, db_now, http_payload

HOURLY = "0 0 * * * *"  # fires on the hour: not again during the test


# Contract 10: the pipeline holds on each broker jobexec supports; contract 9: in each pool.
@pytest.mark.parametrize(
    ("pool", "celery_broker"),
    [("prefork", "redis"), ("threads", "redis"), ("prefork", "rabbitmq"), ("threads", "rabbitmq")],
    indirect=["celery_broker"],
)
def test_given_each_outcome_situation_when_its_event_runs_then_the_row_says_what_happened(
    stack: Stack, pool: str
) -> None:
    # Given a deployment configured through a JDBC URL, 3 tries per run, a worker of this pool
    stack.configure(jdbc=True)
    stack.start("bridge", "worker", pool=pool)
    url = stack.http.url
    stack.http.respond("/bad-request", [400])
    stack.http.respond("/flaky", [503])
    stack.http.respond("/down", [500] * 10)
    stack.http.respond("/down-recurring", [500] * 10)
    jobs = {
        "job_unknown_task": ({"task": "frobnicate"}, "ONE_TIME", None),
        "job_400": (http_payload(url("/bad-request")), "ONE_TIME", None),
        "job_flaky": (http_payload(url("/flaky")), "ONE_TIME", None),
        "job_down": (http_payload(url("/down")), "ONE_TIME", None),
        "job_down_recurring": (http_payload(url("/down-recurring")), "RECURRING", HOURLY),
        "job_recurring_ok": (http_payload(url("/recurring-ok")), "RECURRING", HOURLY),
        "job_bad_cron": (http_payload(url("/bad-cron")), "RECURRING", "not a cron"),
        "job_no_url": ({"task": "http", "method": "POST", "body": {}}, "ONE_TIME", None),
    }
    for job_id, (payload, job_type, cron) in jobs.items():
        stack.insert(job_id, payload, job_type=job_type, cron=cron)
    started_at = db_now(stack)

    # When each claimed job's JobEvent arrives
    for job_id in jobs:
        stack.kafka.produce_event(job_id, attempt=1)

    # Then: no executor for the task -> FAILED naming it, no retry
    row = stack.wait_status("job_unknown_task", "FAILED", "COMPLETED")
    assert row["status"] == "FAILED"
    assert "frobnicate" in row["failure_reason"]
    assert row["failed_at"] is not None
    assert row["attempts"] == 1
    assert len(stack.store.runs("job_unknown_task")) == 1

    # HTTP 400 is permanent: FAILED after one call
    row = stack.wait_status("job_400", "FAILED", "COMPLETED")
    assert row["status"] == "FAILED"
    assert row["failed_at"] is not None
    assert "400" in row["failure_reason"]
    assert len(stack.http.calls("/bad-request")) == 1

    # 503 then 200: retried once with the same idempotency key, then COMPLETED
    row = stack.wait_status("job_flaky", "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED"
    assert row["attempts"] == 2
    calls = stack.http.calls("/flaky")
    assert len(calls) == 2
    assert [c.headers["X-Job-Attempt"] for c in calls] == ["1", "2"]
    assert calls[0].headers["Idempotency-Key"] == calls[1].headers["Idempotency-Key"]
    assert calls[0].headers["Idempotency-Key"]

    # Always 500, ONE_TIME: 3 calls, FAILED because the attempts were exhausted
    row = stack.wait_status("job_down", "FAILED", "COMPLETED")
    assert row["status"] == "FAILED"
    assert "exhausted" in row["failure_reason"].lower()
    assert row["failed_at"] is not None
    assert len(stack.http.calls("/down")) == 3

    # Always 500, RECURRING: after 3 calls the next run is scheduled, with the failure noted
    stack.wait_runs("job_down_recurring", lambda runs: len(runs) >= 3)
    row = stack.wait_status("job_down_recurring", "SCHEDULED", "FAILED")
    assert row["status"] == "SCHEDULED"
    assert row["attempts"] == 0
    assert row["next_run_at"] > started_at
    assert row["failure_reason"] and "exhausted" in row["failure_reason"].lower()
    assert row["failed_at"] is not None
    assert len(stack.http.calls("/down-recurring")) == 3

    # RECURRING success: SCHEDULED for the next fire time, which is in the future
    row = stack.wait_status("job_recurring_ok", "SCHEDULED", "FAILED")
    assert row["status"] == "SCHEDULED"
    assert row["attempts"] == 0
    assert row["next_run_at"] > db_now(stack)
    assert row["next_run_at"] <= started_at + timedelta(hours=1, seconds=1)
    assert len(stack.http.calls("/recurring-ok")) == 1

    # RECURRING with an invalid cron: FAILED without calling anything
    row = stack.wait_status("job_bad_cron", "FAILED", "SCHEDULED", "COMPLETED")
    assert row["status"] == "FAILED"
    assert row["failure_reason"]
    assert stack.http.calls("/bad-cron") == []

    # A payload without its url: FAILED with a reason naming the field
    row = stack.wait_status("job_no_url", "FAILED", "COMPLETED")
    assert row["status"] == "FAILED"
    assert "url" in row["failure_reason"]

    # And exactly the two exhausted runs are on the dead-letter topic, keyed by job id
    records = stack.kafka.consume_all(stack.kafka.dlt, expected=3, timeout=5)
    by_key = {r.key or b"": r for r in records}
    assert sorted(by_key) == [b"job_down", b"job_down_recurring"], records
    for key, record in by_key.items():
        assert set(record.headers) >= set(DLT_HEADERS), record.headers
        assert record.headers["kafka_dlt-original-topic"] == stack.kafka.topic.encode()
        event = record.json()
        assert event["jobId"] == key.decode()

    # Reading the DLT waited 5 s more: no late retry of a finished run came meanwhile
    assert len(stack.http.calls("/bad-request")) == 1
    assert len(stack.http.calls("/down")) == 3
