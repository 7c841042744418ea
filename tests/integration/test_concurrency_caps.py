"""Concurrency caps (contract section 10) at the claim, against PostgreSQL and SQLite.

Each worker is a JobStore with its own engine; claims race from threads released together.
The processes are in tests/e2e/test_concurrency_caps.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import inspect, make_url, text, update

from executors import Registry
from executors.noop import NoopExecutor
from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import job_runs, jobs
from jobexec.core.db.states import RunStatus
from jobexec.core.db.store import Claim, Job, JobStore
from jobexec.core.events import JobEvent
from workers.concurrency import DEFER_MAX_S, DEFER_MIN_S
from workers.lease import LeaseKeeper
from workers.lifecycle import RetryLater, WorkerContext, handle
from workers.retry import RetryPolicy

LEASE = timedelta(seconds=30)
CAPS = {"noop": 2}


def dispatched(store: JobStore, *job_ids: str, task: str = "noop") -> None:
    """Jobs as the scheduler leaves them when it publishes their JobEvents: RUNNING, try 1."""
    store.insert_jobs(
        [
            {
                "job_id": job_id,
                "job_type": "ONE_TIME",
                "payload": {"task": task},
                "status": "RUNNING",
                "attempts": 1,
                "next_run_at": datetime.now(UTC) - timedelta(seconds=1),
            }
            for job_id in job_ids
        ]
    )


def claim(store: JobStore, job_id: str, caps: dict[str, int] = CAPS) -> Claim:
    job, _now, taken = store.claim(job_id, 1, f"worker-of-{job_id}", LEASE, caps)
    assert job is not None and taken is not None, f"{job_id} is not at try 1"
    return taken


def claim_at_once(stores: Callable[[], JobStore], job_ids: list[str]) -> dict[str, Claim]:
    """One worker per job claims its try; all released at the same moment."""
    workers = {job_id: stores() for job_id in job_ids}
    for worker in workers.values():
        worker.db_now()  # connect first, so the claims themselves start together
    start = threading.Barrier(len(job_ids))
    results: dict[str, Claim] = {}
    errors: list[BaseException] = []

    def one(job_id: str) -> None:
        try:
            start.wait(10)
            results[job_id] = claim(workers[job_id], job_id)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(job_id,)) for job_id in job_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def running(store: JobStore, job_id: str) -> list[tuple[int, str]]:
    return [(r["attempt"], r["status"]) for r in store.runs(job_id) if r["finished_at"] is None]


def finish(store: JobStore, job_id: str, run_id: int) -> None:
    row = store.job_row(job_id)
    assert row is not None
    job = Job(*(row[name] for name in Job.__slots__))
    done = store.finish(
        job, 1, run_id, store.db_now(), RunStatus.SUCCEEDED, {"status": "COMPLETED"}
    )
    assert done


@pytest.mark.parametrize("claims", [3, 8])
def test_concurrent_claims_of_a_capped_task_pass_the_cap_exactly(
    store: JobStore, stores: Callable[[], JobStore], claims: int
) -> None:
    # Given as many jobs of the capped task (cap 2) as there are workers claiming at once
    job_ids = [f"job_{n}" for n in range(claims)]
    dispatched(store, *job_ids)

    # When each worker claims its job's try at the same moment
    results = claim_at_once(stores, job_ids)

    # Then two are claimed and run; the others are deferred, their attempt unchanged
    won = [job_id for job_id, taken in results.items() if taken.run_id is not None]
    deferred = [job_id for job_id, taken in results.items() if taken.capped_task == "noop"]
    assert len(won) == 2, results
    assert sorted(won + deferred) == sorted(job_ids)
    for job_id in deferred:
        row = store.job_row(job_id)
        assert row is not None
        assert (row["status"], row["attempts"]) == ("RUNNING", 1)
        assert store.runs(job_id) == []
    for job_id in won:
        assert running(store, job_id) == [(1, "RUNNING")]


def test_a_finished_try_frees_its_slot(store: JobStore) -> None:
    # Given two tries of the capped task running (cap 2) and a third deferred
    dispatched(store, "job_a", "job_b", "job_c")
    first, second = claim(store, "job_a"), claim(store, "job_b")
    assert claim(store, "job_c") == Claim(capped_task="noop")
    assert first.run_id is not None and second.run_id is not None

    # When one of the running tries finishes
    finish(store, "job_a", first.run_id)

    # Then the deferred try is claimed at its next delivery
    assert claim(store, "job_c").run_id is not None
    assert running(store, "job_c") == [(1, "RUNNING")]


def test_a_try_whose_lease_expired_holds_no_slot(store: JobStore) -> None:
    # Given two tries of the capped task claimed, whose workers died: their leases expired
    dispatched(store, "job_a", "job_b", "job_c")
    assert claim(store, "job_a").run_id is not None
    assert claim(store, "job_b").run_id is not None
    with store.engine.begin() as conn:
        conn.execute(
            update(job_runs).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

    # When a third try of the task is claimed
    taken = claim(store, "job_c")

    # Then it is claimed: unfinished tries without a live lease do not count
    assert taken.run_id is not None


def test_a_handed_back_try_holds_no_slot_and_is_itself_capped(store: JobStore) -> None:
    # Given a try handed back by a stopping worker (its lease renewed) and two tries running
    dispatched(store, "job_a", "job_b", "job_c")
    handed = claim(store, "job_a")
    assert handed.run_id is not None
    store.hand_back(handed.run_id, LEASE)
    assert claim(store, "job_b").run_id is not None
    assert claim(store, "job_c").run_id is not None

    # When the handed-back try is delivered again while the cap is reached
    again = claim(store, "job_a")

    # Then it waits, as any try over the cap, and its row is still handed back
    assert again == Claim(capped_task="noop")
    assert [r["status"] for r in store.runs("job_a")] == ["HANDED_BACK"]


def test_an_uncapped_task_is_never_deferred(
    store: JobStore, stores: Callable[[], JobStore]
) -> None:
    # Given jobs of a task with no cap, beside a cap of 2 on another task
    job_ids = [f"job_{n}" for n in range(5)]
    dispatched(store, *job_ids, task="sleep")

    # When five workers claim them at once
    results = claim_at_once(stores, job_ids)

    # Then every try is claimed
    assert all(taken.run_id is not None for taken in results.values()), results


def test_a_live_lease_of_the_same_try_is_still_a_duplicate_not_a_deferral(
    store: JobStore,
) -> None:
    # Given the cap reached by two tries, one of them job_a's
    dispatched(store, "job_a", "job_b")
    assert claim(store, "job_a").run_id is not None
    assert claim(store, "job_b").run_id is not None

    # When job_a's message is delivered a second time
    taken = claim(store, "job_a")

    # Then it is held by the live lease, as without a cap
    assert taken.run_id is None and taken.capped_task is None
    assert taken.lease_expires_at is not None


def worker_context(store: JobStore, caps: dict[str, int]) -> WorkerContext:
    """A worker's context with these caps; the lifecycle runs in-process."""
    return WorkerContext(
        store=store,
        registry=Registry([NoopExecutor(Settings.load({}))]),
        retry=RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.5),
        lease=LEASE,
        leases=LeaseKeeper(store, LEASE, 10),
        dead_letters=None,
        events_topic="job-events",
        caps=caps,
    )


def deferred_total(task: str) -> float:
    labels = {"task": task, "reason": "concurrency"}
    return REGISTRY.get_sample_value("jobexec_job_deferred_total", labels) or 0.0


def test_the_worker_defers_a_try_over_the_cap_without_spending_an_attempt(
    store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a worker with a cap of 1 on noop, and one noop try running elsewhere
    ctx = worker_context(store, {"noop": 1})
    dispatched(store, "job_running", "job_waiting")
    assert claim(store, "job_running", {"noop": 1}).run_id is not None
    before = deferred_total("noop")

    # When the other job's JobEvent is handled
    with caplog.at_level(logging.INFO, logger="jobexec.worker"):
        later = handle(ctx, JobEvent("job_waiting", 1, None), "test-worker", None)

    # Then it is to be delivered again shortly at the same attempt; nothing ran or was spent
    assert isinstance(later, RetryLater)
    assert later.attempt == 1
    assert DEFER_MIN_S <= later.delay <= DEFER_MAX_S
    row = store.job_row("job_waiting")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("RUNNING", 1)
    assert store.runs("job_waiting") == []
    assert deferred_total("noop") == before + 1
    actions = [getattr(r, "action", None) for r in caplog.records]
    assert "job_deferred_concurrency" in actions

    # And once the running try finished, the next delivery runs it to COMPLETED
    [held] = store.runs("job_running")
    finish(store, "job_running", held["id"])
    assert handle(ctx, JobEvent("job_waiting", 1, None), "test-worker", None) is None
    done = store.job_row("job_waiting")
    assert done is not None
    assert (done["status"], done["attempts"]) == ("COMPLETED", 1)


def test_migration_0004_adds_the_task_column_to_an_existing_history(database: str) -> None:
    # Given a job database as jobexec left it before 0004: job_runs without task or its index
    engine = make_engine(make_url(database))
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_job_runs_unfinished_task"))
        conn.execute(text("ALTER TABLE job_runs DROP COLUMN task"))
        conn.execute(text("UPDATE jobexec_alembic_version SET version_num = '0003'"))

    # When it is upgraded
    upgrade(engine)

    # Then the column and its index are back, and a capped claim works
    inspector = inspect(engine)
    assert "task" in {c["name"] for c in inspector.get_columns("job_runs")}
    assert "ix_job_runs_unfinished_task" in {ix["name"] for ix in inspector.get_indexes("job_runs")}
    store = JobStore(engine)
    dispatched(store, "job_a")
    assert claim(store, "job_a").run_id is not None
    assert [r["task"] for r in store.runs("job_a")] == ["noop"]
    engine.dispose()


def test_a_try_waiting_behind_the_cap_is_not_swept_as_abandoned(store: JobStore) -> None:
    # Given a try of a capped task (cap 1) waiting behind another, its job last updated an
    # hour ago
    ctx = worker_context(store, {"noop": 1})
    dispatched(store, "job_running", "job_waiting")
    assert claim(store, "job_running", {"noop": 1}).run_id is not None
    with store.engine.begin() as conn:
        an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
        conn.execute(update(jobs).values(updated_at=an_hour_ago))

    # When its JobEvent is deferred, then the sweeper looks for abandoned runs
    assert isinstance(
        handle(ctx, JobEvent("job_waiting", 1, None), "test-worker", None), RetryLater
    )
    redispatched, exhausted = store.sweep_abandoned(timedelta(minutes=5), 3, 100)

    # Then the waiting try is left alone: still at attempt 1, no attempt spent
    assert [d.job_id for d in redispatched] == []
    assert exhausted == []
    row = store.job_row("job_waiting")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("RUNNING", 1)
