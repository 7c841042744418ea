"""The operator commands `jobexec jobs ...` and `jobexec dlq ...` as subprocesses.

Each test is one deployment (its own PostgreSQL database and topics, schema by
`jobexec db upgrade`); the commands read the same configuration files as the services.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from jobexec.core.db.schema import job_runs
from jobexec.core.events import JobEvent
from jobexec.core.outcomes import EXHAUSTED_FQCN, exhaustion_reason
from jobexec.testing.commands import dead_letter, dlq_positions, jobexec, ok, refused, replays
from jobexec.testing.events import DLT_HEADERS
from jobexec.testing.stack import Stack, db_now


def add_runs(stack: Stack, job_id: str, run_at: datetime, *runs: dict[str, Any]) -> None:
    start = run_at + timedelta(seconds=1)
    with stack.store.engine.begin() as conn:
        for n, run in enumerate(runs, start=1):
            conn.execute(
                insert(job_runs).values(
                    job_id=job_id,
                    run_at=run_at,
                    attempt=n,
                    started_at=start,
                    lease_expires_at=start + timedelta(seconds=30),
                    finished_at=start + timedelta(seconds=2),
                    **run,
                )
            )


# --- submit ---------------------------------------------------------------------------------


def test_given_submitted_jobs_when_the_scheduler_runs_then_only_the_due_one_is_dispatched(
    stack: Stack,
) -> None:
    # Given a deployment
    stack.configure()
    before = db_now(stack)

    # When a one-time job now, one at a future time and a recurring one are submitted
    now_id = ok(stack, "jobs", "submit", "--task", "noop").strip()
    at_id = ok(
        stack,
        "jobs",
        "submit",
        "--task",
        "http",
        "--payload",
        '{"url": "http://127.0.0.1:9/x", "method": "GET"}',
        "--at",
        "2099-01-31T09:30:00+01:00",
        "--id",
        "job_at",
        "--created-by",
        "alice",
    ).strip()
    cron_id = ok(
        stack,
        "jobs",
        "submit",
        "--task",
        "sleep",
        "--payload",
        '{"seconds": 0}',
        "--cron",
        "0 0 * * *",
    ).strip()

    # Then each printed its id and has the row the job API would write
    assert now_id.startswith("job_") and len(now_id) == len("job_") + 36
    assert at_id == "job_at"
    now_row = stack.row(now_id)
    assert now_row["job_type"] == "ONE_TIME" and now_row["execution_mode"] == "IMMEDIATE"
    assert now_row["status"] == "SCHEDULED" and now_row["attempts"] == 0
    assert now_row["payload"] == {"task": "noop"}
    assert before - timedelta(seconds=1) <= now_row["next_run_at"] <= db_now(stack)
    at_row = stack.row("job_at")
    assert at_row["execution_mode"] == "SCHEDULED" and at_row["created_by"] == "alice"
    assert at_row["next_run_at"] == datetime(2099, 1, 31, 8, 30, tzinfo=UTC)
    assert at_row["payload"] == {"task": "http", "url": "http://127.0.0.1:9/x", "method": "GET"}
    cron_row = stack.row(cron_id)
    assert cron_row["job_type"] == "RECURRING" and cron_row["cron_expression"] == "0 0 * * *"
    assert cron_row["execution_mode"] is None and cron_row["status"] == "SCHEDULED"
    next_run = cron_row["next_run_at"]
    assert next_run > before and (next_run.hour, next_run.minute, next_run.second) == (0, 0, 0)

    # And the scheduler dispatches the job due now, and only it
    stack.start("scheduler")
    row = stack.wait_status(now_id, "RUNNING")
    assert row["attempts"] == 1
    [event] = stack.kafka.consume_all(stack.kafka.topic, expected=1, timeout=15)
    assert event.key == now_id.encode() and event.json()["attempt"] == 1
    assert stack.row("job_at")["status"] == "SCHEDULED"
    assert stack.row(cron_id)["status"] == "SCHEDULED"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--task", "frobnicate"], "unknown task 'frobnicate'; known tasks: http, noop,"),
        (["--task", "http", "--payload", '{"url": '], "--payload is not valid JSON"),
        (["--task", "http", "--payload", "[1, 2]"], "must be a JSON object, not a JSON array"),
        (["--task", "http", "--payload", "@/nonexistent.json"], "cannot be read"),
        (["--task", "noop", "--payload", '{"task": "sleep"}'], "but --task is 'noop'"),
        (["--task", "noop", "--cron", "* * *"], "invalid --cron: cron expression '* * *' has 3"),
        (["--task", "noop", "--cron", "61 * * * *"], "invalid --cron"),
        (["--task", "noop", "--at", "next tuesday"], "--at 'next tuesday' is not an ISO-8601"),
    ],
)
def test_given_bad_input_when_submitting_then_it_exits_2_with_one_line_and_adds_nothing(
    stack: Stack, args: list[str], says: str
) -> None:
    stack.configure()

    line = refused(stack, "jobs", "submit", *args, code=2)

    assert says in line
    assert ok(stack, "jobs", "list", "--json") == ""


def test_given_bad_filters_or_settings_when_running_then_it_exits_2(stack: Stack) -> None:
    stack.configure()

    assert "--status 'done' is not one of" in refused(
        stack, "jobs", "list", "--status", "done", code=2
    )
    assert "--type" in refused(stack, "jobs", "list", "--type", "weekly", code=2)
    assert "--limit" in refused(stack, "jobs", "list", "--limit", "0", code=2)
    assert "PARTITION:OFFSET" in refused(stack, "dlq", "replay", "--offset", "x1", code=2)
    # And a missing setting is a configuration error, as for every command
    stack.env = stack.config_files.write({"configs.kafka.bootstrap-servers": stack.kafka.bootstrap})
    line = refused(stack, "jobs", "show", "job_x", code=2)
    assert "configs.jobDb.url is missing" in line


def test_given_a_duplicate_id_when_submitting_then_it_exits_1(stack: Stack) -> None:
    stack.configure()
    ok(stack, "jobs", "submit", "--task", "noop", "--id", "job_same")

    assert refused(stack, "jobs", "submit", "--task", "noop", "--id", "job_same") == (
        "jobexec: job job_same already exists"
    )


# --- list and show --------------------------------------------------------------------------


def test_given_jobs_in_several_states_when_listing_then_filters_apply(stack: Stack) -> None:
    # Given jobs of both types in several states
    stack.configure()
    now = db_now(stack)
    stack.insert("job_a", {"task": "noop"}, status="SCHEDULED", attempts=0, next_run_at=now)
    stack.insert("job_b", {"task": "noop"}, status="FAILED", attempts=3, next_run_at=now)
    stack.insert(
        "job_c",
        {"task": "noop"},
        status="SCHEDULED",
        attempts=0,
        job_type="RECURRING",
        cron="0 0 * * *",
        next_run_at=now + timedelta(hours=1),
    )
    stack.insert("job_d", {"task": "noop"}, status="COMPLETED", next_run_at=now - timedelta(1))
    with stack.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE jobs SET failure_reason = %s WHERE job_id = 'job_b'", ("boom " * 40,)
        )

    # When listing without and with filters
    table = ok(stack, "jobs", "list").splitlines()
    failed = ok(stack, "jobs", "list", "--status", "FAILED").splitlines()
    several = ok(stack, "jobs", "list", "--status", "failed,completed", "--json").splitlines()
    recurring = ok(stack, "jobs", "list", "--type", "recurring", "--json").splitlines()
    limited = jobexec(stack, "jobs", "list", "--limit", "2")

    # Then the table has a header and every job, next run first
    assert table[0].split()[:4] == ["JOB", "ID", "TYPE", "STATUS"]
    assert [line.split()[0] for line in table[1:]] == ["job_d", "job_a", "job_b", "job_c"]
    # And the failure reason is truncated
    [b_line] = failed[1:]
    assert b_line.startswith("job_b") and "FAILED" in b_line and b_line.endswith("...")
    assert len(b_line) < 200
    assert {json.loads(line)["job_id"] for line in several} == {"job_b", "job_d"}
    [only] = [json.loads(line) for line in recurring]
    assert only["job_id"] == "job_c" and only["cron_expression"] == "0 0 * * *"
    assert len(limited.stdout.splitlines()) == 3
    assert "--limit" in limited.stderr


def test_given_a_job_with_tries_when_showing_it_then_the_row_and_run_history_appear(
    stack: Stack,
) -> None:
    # Given a job with three tries in its history
    stack.configure()
    run_at = db_now(stack)
    stack.insert("job_hist", {"task": "http", "url": "http://x"}, status="FAILED", attempts=3)
    add_runs(
        stack,
        "job_hist",
        run_at,
        {"worker": "celery@w1", "status": "RETRYING", "error": "HTTP 503"},
        {"worker": "celery@w2", "status": "RETRYING", "error": "timeout"},
        {"worker": "celery@w1", "status": "EXHAUSTED", "error": "attempts exhausted"},
    )

    # When it is shown
    text = ok(stack, "jobs", "show", "job_hist")
    data = json.loads(ok(stack, "jobs", "show", "job_hist", "--json"))

    # Then the row and each try are there
    assert "job_id:" in text and "job_hist" in text and "FAILED" in text
    assert '"url": "http://x"' in text
    history = text[text.index("ATTEMPT") :].splitlines()
    assert len(history) == 4
    assert "celery@w2" in history[2] and "RETRYING" in history[2] and "timeout" in history[2]
    assert "EXHAUSTED" in history[3]
    assert data["job"]["status"] == "FAILED" and data["job"]["attempts"] == 3
    assert [(r["attempt"], r["worker"], r["status"]) for r in data["runs"]] == [
        (1, "celery@w1", "RETRYING"),
        (2, "celery@w2", "RETRYING"),
        (3, "celery@w1", "EXHAUSTED"),
    ]
    # And a missing job is "not found"
    assert refused(stack, "jobs", "show", "job_nope") == "jobexec: no job job_nope"


# --- cancel and retry -----------------------------------------------------------------------


def test_given_jobs_in_each_state_when_cancelling_then_the_rules_hold(stack: Stack) -> None:
    stack.configure()
    for status in ("SCHEDULED", "PAUSED", "FAILED", "RUNNING", "COMPLETED", "CANCELLED"):
        stack.insert(f"job_{status.lower()}", {"task": "noop"}, status=status)

    # Cancellable states
    for job_id in ("job_scheduled", "job_paused", "job_failed"):
        assert "cancelled" in ok(stack, "jobs", "cancel", job_id)
        assert stack.row(job_id)["status"] == "CANCELLED"
    # A run in flight is cancelled at once, its try told to stop; --force is still accepted
    assert "told to stop" in ok(stack, "jobs", "cancel", "job_running")
    assert stack.row("job_running")["status"] == "CANCELLED"
    stack.insert("job_running_too", {"task": "noop"}, status="RUNNING")
    ok(stack, "jobs", "cancel", "job_running_too", "--force")
    assert stack.row("job_running_too")["status"] == "CANCELLED"
    # Final states stay as they are
    for job_id, status in (("job_completed", "COMPLETED"), ("job_cancelled", "CANCELLED")):
        assert f"already {status}, which is final" in refused(stack, "jobs", "cancel", job_id)
        assert stack.row(job_id)["status"] == status
    assert refused(stack, "jobs", "cancel", "job_nope") == "jobexec: no job job_nope"


def test_given_a_failed_job_when_retried_then_the_scheduler_dispatches_it_again(
    stack: Stack,
) -> None:
    # Given a FAILED job and a COMPLETED one
    stack.configure()
    stack.insert("job_failed", {"task": "noop"}, status="FAILED", attempts=3)
    with stack.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE jobs SET failure_reason = 'boom', failed_at = now(), "
            "next_run_at = now() - interval '1 day' WHERE job_id = 'job_failed'"
        )
    stack.insert("job_done", {"task": "noop"}, status="COMPLETED")
    before = db_now(stack)

    # When the FAILED one is retried
    assert "scheduled again" in ok(stack, "jobs", "retry", "job_failed")

    # Then it is SCHEDULED, due now, attempts 0, the failure cleared
    row = stack.row("job_failed")
    assert row["status"] == "SCHEDULED" and row["attempts"] == 0
    assert row["failure_reason"] is None and row["failed_at"] is None
    assert row["next_run_at"] >= before
    # And other states are refused
    assert "only a FAILED job" in refused(stack, "jobs", "retry", "job_done")
    assert "only a FAILED job" in refused(stack, "jobs", "retry", "job_failed")
    assert refused(stack, "jobs", "retry", "job_nope") == "jobexec: no job job_nope"
    # And the scheduler dispatches it as attempt 1
    stack.start("scheduler")
    assert stack.wait_status("job_failed", "RUNNING")["attempts"] == 1
    [event] = stack.kafka.consume_all(stack.kafka.topic, expected=1, timeout=15)
    assert event.json()["jobId"] == "job_failed" and event.json()["attempt"] == 1


# --- dead-letter topic ----------------------------------------------------------------------


def test_given_dead_letters_when_listing_then_each_shows_its_position_headers_and_value(
    stack: Stack,
) -> None:
    stack.configure()
    assert ok(stack, "dlq", "list") == ""
    dead_letter(stack, "job_p", b"{not json", "jobexec.PoisonRecord", "value is not JSON", 7)
    event = JobEvent("job_x", 3, None).to_json()
    dead_letter(stack, "job_x", event, EXHAUSTED_FQCN, exhaustion_reason(3, "HTTP 503"), 8)

    text = ok(stack, "dlq", "list")
    records = [json.loads(line) for line in ok(stack, "dlq", "list", "--json").splitlines()]
    limited = jobexec(stack, "dlq", "list", "--limit", "1")

    assert {r["key"] for r in records} == {"job_p", "job_x"}
    by_key = {r["key"]: r for r in records}
    assert by_key["job_p"]["value"] == "{not json"
    assert by_key["job_x"]["headers"]["kafka_dlt-exception-fqcn"] == EXHAUSTED_FQCN
    assert by_key["job_x"]["headers"]["kafka_dlt-original-offset"] == "8"
    assert by_key["job_x"]["headers"]["kafka_dlt-original-topic"] == stack.kafka.topic
    for name in DLT_HEADERS:
        assert f"  {name}: " in text
    for record in records:
        assert f"{record['partition']}:{record['offset']}  key={record['key']}" in text
    assert "value: {not json" in text
    assert "attempts exhausted after 3 tries: HTTP 503" in text
    assert limited.returncode == 0 and text.startswith(limited.stdout)
    assert "--limit" in limited.stderr


def test_given_dead_letters_when_replayed_then_each_is_published_once(stack: Stack) -> None:
    # Given two poison records on the dead-letter topic
    stack.configure()
    dead_letter(stack, "job_p1", b"{not json", "jobexec.PoisonRecord", "bad JSON", 1)
    dead_letter(stack, "job_p2", b"[1]", "jobexec.PoisonRecord", "not an object", 2)
    positions = dlq_positions(stack)

    # When a dry run goes first
    dry = ok(stack, "dlq", "replay", "--all", "--dry-run")

    # Then it says what it would do and does nothing
    assert dry.count("would replay ") == 3  # two records and the summary
    assert "dead-lettered again" in dry
    assert stack.kafka.consume_all(stack.kafka.topic, expected=1, timeout=2) == []
    assert replays(stack) == 0

    # When one record is replayed
    out = ok(stack, "dlq", "replay", "--offset", positions["job_p1"])

    # Then it is on the job-events topic, key and value unchanged, dlt headers dropped
    assert f"replayed {positions['job_p1']}" in out and "dead-lettered again" in out
    [published] = stack.kafka.consume_all(stack.kafka.topic, expected=2, timeout=3)
    assert (published.key, published.value) == (b"job_p1", b"{not json")
    assert not set(DLT_HEADERS) & set(published.headers)
    assert published.headers["origin"] == b"test"
    assert published.headers["jobexec-replayed-from"] == (
        f"{stack.kafka.dlt}:{positions['job_p1']}".encode()
    )

    # When it is replayed again, then with --all
    again = ok(stack, "dlq", "replay", "--offset", positions["job_p1"])
    everything = ok(stack, "dlq", "replay", "--all")

    # Then the first is skipped both times and the second published once
    assert f"skipped {positions['job_p1']}: already replayed" in again
    assert f"skipped {positions['job_p1']}" in everything
    assert f"replayed {positions['job_p2']}" in everything
    published_all = stack.kafka.consume_all(stack.kafka.topic, expected=3, timeout=3)
    assert sorted(r.key or b"" for r in published_all) == [b"job_p1", b"job_p2"]
    assert replays(stack) == 2
    assert "skipped 2 already replayed" in ok(stack, "dlq", "replay", "--all")

    # And positions that do not exist or are ambiguous are refused before anything is done
    partition = positions["job_p1"].split(":")[0]
    assert "no record" in refused(stack, "dlq", "replay", "--offset", f"{partition}:999")
    assert "3 partitions" in refused(stack, "dlq", "replay", "--offset", "0", code=2)


def test_given_an_exhausted_job_when_its_dead_letter_is_replayed_then_the_job_runs_again(
    stack: Stack,
) -> None:
    # Given a ONE_TIME job that exhausted its 3 tries and was dead-lettered
    stack.configure()
    stack.insert("job_exhausted", {"task": "noop"}, status="FAILED", attempts=3)
    run_at = stack.row("job_exhausted")["next_run_at"]
    error = {"worker": "celery@w", "status": "RETRYING", "error": "HTTP 503"}
    add_runs(stack, "job_exhausted", run_at, error, error, {**error, "status": "EXHAUSTED"})
    with stack.store.engine.begin() as conn:  # as the worker leaves it, before its dead letter
        conn.exec_driver_sql(
            "UPDATE jobs SET failure_reason = %s, failed_at = now() WHERE job_id = %s",
            (exhaustion_reason(3, "503"), "job_exhausted"),
        )
    event = JobEvent("job_exhausted", 3, run_at).to_json()
    dead_letter(stack, "job_exhausted", event, EXHAUSTED_FQCN, exhaustion_reason(3, "503"), 4)
    stack.start("bridge", "worker")

    # When the record is replayed
    out = ok(stack, "dlq", "replay", "--all")

    # Then the job was re-armed and the event published as attempt 1 of a new run
    assert "re-armed" in out
    [published] = stack.kafka.consume_all(stack.kafka.topic, expected=1, timeout=10)
    assert published.json()["attempt"] == 1 and published.key == b"job_exhausted"
    # And the worker accepted it: the job completed
    row = stack.wait_status("job_exhausted", "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED", stack.store.runs("job_exhausted")
    assert row["failure_reason"] is None
    runs = stack.store.runs("job_exhausted")
    assert [(r["attempt"], r["status"]) for r in runs][-1] == (1, "SUCCEEDED")
    # And a second replay changes nothing
    assert "skipped 1 already replayed" in ok(stack, "dlq", "replay", "--all")
    assert len(stack.kafka.consume_all(stack.kafka.topic, expected=2, timeout=2)) == 1
