"""The job operations the CLI and the console share, on real PostgreSQL and SQLite: what each
changes, what it returns, and the reason it gives when it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobexec.core.config import Settings
from jobexec.core.db.store import JobStore
from jobexec.operations.errors import InvalidInput, OperationError
from jobexec.operations.jobs import JobOperations, check_task
from jobexec.operations.store import job_store


def _job(job_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": job_id, "job_type": "ONE_TIME", "payload": {}, "status": status, **extra}


def _status(store: JobStore, job_id: str) -> str:
    row = store.job_row(job_id)
    assert row is not None
    status: str = row["status"]
    return status


def test_submit_inserts_a_scheduled_job_and_refuses_its_id_twice(store: JobStore) -> None:
    ops = JobOperations(store)
    job_id = ops.submit("noop", {"n": 1}, None, None, "job_new", "me")

    row = store.job_row(job_id)
    assert job_id == "job_new" and row is not None
    assert (row["status"], row["attempts"], row["payload"]) == (
        "SCHEDULED",
        0,
        {"n": 1, "task": "noop"},
    )
    with pytest.raises(OperationError, match=r"^job job_new already exists$") as caught:
        ops.submit("noop", {}, None, None, "job_new", "me")
    assert not isinstance(caught.value, InvalidInput)


def test_cancel_refuses_a_missing_or_final_job_and_says_a_running_try_is_told(
    store: JobStore,
) -> None:
    store.insert_jobs([_job("job_done", "COMPLETED"), _job("job_run", "RUNNING", attempts=1)])
    ops = JobOperations(store)

    with pytest.raises(OperationError, match=r"^no job job_nope$"):
        ops.cancel("job_nope")
    with pytest.raises(OperationError, match="job job_done is already COMPLETED, which is final"):
        ops.cancel("job_done")
    assert _status(store, "job_done") == "COMPLETED"

    done = ops.cancel("job_run")
    assert (done.job_id, done.was) == ("job_run", "RUNNING")
    assert done.message == "job job_run cancelled (was RUNNING; its running try is told to stop)"
    assert _status(store, "job_run") == "CANCELLED"


def test_pause_and_resume_move_only_the_status_they_name(store: JobStore) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    store.insert_jobs([_job("job_later", "SCHEDULED", next_run_at=later)])
    ops = JobOperations(store)

    with pytest.raises(OperationError, match="job job_later is SCHEDULED: only a PAUSED job"):
        ops.resume("job_later")
    assert ops.pause("job_later").message == "job job_later paused (was SCHEDULED)"
    assert _status(store, "job_later") == "PAUSED"
    with pytest.raises(OperationError, match="job job_later is PAUSED: only a SCHEDULED job"):
        ops.pause("job_later")

    resumed = ops.resume("job_later")
    # A one-time job keeps its own next run.
    assert resumed.next_run_at is not None and abs(resumed.next_run_at - later) < timedelta(
        seconds=1
    )
    assert _status(store, "job_later") == "SCHEDULED"


def test_a_paused_recurring_job_resumes_at_its_next_fire_time(store: JobStore) -> None:
    store.insert_jobs(
        [_job("job_cron", "PAUSED", job_type="RECURRING", cron_expression="0 0 * * *")]
    )
    resumed = JobOperations(store).resume("job_cron")

    assert resumed.next_run_at is not None
    next_run = resumed.next_run_at.astimezone(UTC)
    assert (next_run.hour, next_run.minute, next_run.second) == (0, 0, 0)
    assert next_run > datetime.now(UTC)
    assert resumed.message.startswith("job job_cron resumed, next run ")


def test_retry_clears_a_failure_and_names_it_masked(store: JobStore) -> None:
    reason = "POST http://svc:hunter2@api.test/hook answered HTTP 500"
    store.insert_jobs(
        [
            _job("job_failed", "FAILED", attempts=3, failure_reason=reason),
            _job("job_sched", "SCHEDULED"),
        ]
    )
    ops = JobOperations(store)

    with pytest.raises(OperationError, match="job job_sched is SCHEDULED: only a FAILED job"):
        ops.retry("job_sched")
    done = ops.retry("job_failed")

    assert "hunter2" not in done.message
    assert done.message.startswith("job job_failed scheduled again, due now (was FAILED: POST")
    row = store.job_row("job_failed")
    assert row is not None
    assert (row["status"], row["attempts"], row["failure_reason"]) == ("SCHEDULED", 0, None)


def test_history_is_the_row_and_its_runs_and_refuses_a_missing_job(store: JobStore) -> None:
    store.insert_jobs([_job("job_a", "SCHEDULED")])
    history = JobOperations(store).history("job_a")

    assert history.job["job_id"] == "job_a" and history.runs == []
    with pytest.raises(OperationError, match=r"^no job job_b$"):
        JobOperations(store).history("job_b")


def test_listing_says_whether_more_jobs_exist(store: JobStore) -> None:
    store.insert_jobs([_job(f"job_{n}", "SCHEDULED") for n in range(3)])
    ops = JobOperations(store)

    assert ops.list_jobs([], [], 3).more is False
    listing = ops.list_jobs(["SCHEDULED"], ["ONE_TIME"], 2)
    assert len(listing.rows) == 2 and listing.more is True
    assert ops.list_jobs(["FAILED"], [], 5).rows == []


def test_an_unknown_task_is_invalid_input_naming_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"unknown task 'nope'; known tasks: .*noop"):
        check_task("nope", Settings.load({}))


def test_the_store_is_disposed_when_the_operation_ends(tmp_path: Path) -> None:
    settings = Settings.load({"CONFIGS_JOBDB_URL": f"sqlite:///{tmp_path / 'jobs.db'}"})
    with job_store(settings) as store:
        with store.engine.connect():
            pass
        assert store.engine.pool.checkedin() == 1
    assert store.engine.pool.checkedin() == 0
