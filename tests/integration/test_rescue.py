"""The rescue of lost tries (a try whose lease expired unfinished), against PostgreSQL and SQLite.

The workers' rescuer runs these statements; the processes are in tests/e2e/test_rescue.py.
Dead letters go to real Kafka (Tansu).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import make_url, update

from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.schema import job_runs, jobs
from jobexec.core.db.store import Dispatch, JobStore
from jobexec.core.deadletter import DeadLetterWriter
from jobexec.core.kafka import reliable_producer
from jobexec.testing.kafka import KafkaTopics
from scheduling.sweeper import Sweeper
from workers.rescue import Rescuer

LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 3


def claimed(
    store: JobStore,
    job_id: str,
    lease_left: timedelta,
    attempt: int = 1,
    finished: bool = False,
    run_status: str = "RUNNING",
    **row: object,
) -> datetime:
    """A RUNNING job whose current try a worker claimed; its lease ends `lease_left` from now
    (negative: it has expired). Returns the run's next_run_at."""
    now = datetime.now(UTC)
    next_run_at = now - timedelta(minutes=10)
    store.insert_jobs(
        [
            {
                "job_id": job_id,
                "job_type": "ONE_TIME",
                "payload": {"task": "noop"},
                "status": "RUNNING",
                "attempts": attempt,
                "next_run_at": next_run_at,
                **row,
            }
        ]
    )
    with store.engine.begin() as conn:
        conn.execute(
            update(jobs).where(jobs.c.job_id == job_id).values(updated_at=now - timedelta(hours=1))
        )
        conn.execute(
            job_runs.insert().values(
                job_id=job_id,
                run_at=next_run_at,
                attempt=attempt,
                worker="dead-host/4242",
                status="SUCCEEDED" if finished else run_status,
                started_at=now - timedelta(minutes=5),
                lease_expires_at=now + lease_left,
                finished_at=now - timedelta(minutes=1) if finished else None,
            )
        )
    return next_run_at


def rescue(store: JobStore, limit: int = 100) -> list[Dispatch]:
    with store.rescue(MAX_ATTEMPTS, limit) as taken:
        return taken


def runs(store: JobStore, job_id: str) -> list[tuple[int, str, bool]]:
    return [(r["attempt"], r["status"], r["finished_at"] is not None) for r in store.runs(job_id)]


def test_lost_try_with_tries_left_is_recorded_lost_and_its_next_try_dispatched(
    store: JobStore,
) -> None:
    # Given a try whose worker died: unfinished, its lease expired a second ago
    run_at = claimed(store, "job_lost", lease_left=-timedelta(seconds=1))
    assert [j.job_id for j in store.lost_tries(100)] == ["job_lost"]

    # When a rescuer takes it over
    taken = rescue(store)

    # Then the next try is dispatched, the job moves to it, the dead try is LOST
    # (with its task, which routes choose its queue by)
    assert taken == [Dispatch("job_lost", 2, run_at, "noop")]
    row = store.job_row("job_lost")
    assert row is not None
    assert (row["status"], row["attempts"]) == ("RUNNING", 2)
    assert row["updated_at"] > datetime.now(UTC) - timedelta(minutes=1)
    [dead] = store.runs("job_lost")
    assert (dead["attempt"], dead["status"]) == (1, "LOST")
    assert dead["finished_at"] is not None
    assert "dead-host/4242" in dead["error"]
    # And it is taken over once: the next pass finds nothing
    assert store.lost_tries(100) == []
    assert rescue(store) == []


def test_live_lease_finished_try_and_settled_job_are_never_rescued(store: JobStore) -> None:
    claimed(store, "job_live", lease_left=timedelta(seconds=2))
    claimed(store, "job_done", lease_left=-timedelta(minutes=1), finished=True)
    claimed(store, "job_cancelled", lease_left=-timedelta(minutes=1), status="CANCELLED")
    # A job already at try 2 whose try 1 was lost before: try 2 is not started, not lost
    run_at = claimed(store, "job_moved_on", lease_left=-timedelta(minutes=1))
    with store.engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.job_id == "job_moved_on").values(attempts=2))

    assert store.lost_tries(100) == []
    assert rescue(store) == []
    assert store.job_row("job_live")["attempts"] == 1  # type: ignore[index]
    assert runs(store, "job_live") == [(1, "RUNNING", False)]
    assert runs(store, "job_done") == [(1, "SUCCEEDED", True)]
    assert store.job_row("job_cancelled")["status"] == "CANCELLED"  # type: ignore[index]
    assert store.job_row("job_moved_on")["next_run_at"] == run_at  # type: ignore[index]
    assert store.job_row("job_moved_on")["attempts"] == 2  # type: ignore[index]


def test_a_run_that_never_reached_a_worker_is_left_to_the_sweeper(store: JobStore) -> None:
    store.insert_jobs(
        [
            {
                "job_id": "job_queued",
                "job_type": "ONE_TIME",
                "payload": {"task": "noop"},
                "status": "RUNNING",
                "attempts": 1,
                "next_run_at": datetime.now(UTC) - timedelta(hours=1),
            }
        ]
    )
    assert store.lost_tries(100) == []
    assert rescue(store) == []


def test_a_rescuer_holding_its_rescue_makes_another_skip_the_same_tries(
    stores: Callable[[], JobStore],
) -> None:
    first, second = stores(), stores()
    claimed(first, "job_a", lease_left=-timedelta(seconds=5))
    # While the first rescuer is inside its block (publishing), the second finds nothing
    with first.rescue(MAX_ATTEMPTS, 100) as taken:
        assert [d.job_id for d in taken] == ["job_a"]
        assert rescue(second) == []
    assert rescue(second) == []
    assert first.job_row("job_a")["attempts"] == 2  # type: ignore[index]
    assert runs(first, "job_a") == [(1, "LOST", True)]


def test_many_rescuers_at_once_dispatch_every_lost_try_exactly_once(
    stores: Callable[[], JobStore],
) -> None:
    # Given 60 lost tries and four workers' rescuers started at the same instant
    setup = stores()
    ids = [f"job_{n:03d}" for n in range(60)]
    for job_id in ids:
        claimed(setup, job_id, lease_left=-timedelta(seconds=3))
    rescuers = [stores() for _ in range(4)]
    start = threading.Barrier(len(rescuers))
    taken: list[Dispatch] = []
    errors: list[BaseException] = []

    def run(store: JobStore) -> None:
        try:
            start.wait(10)
            for _ in range(10):  # small batches, so the rescuers interleave
                taken.extend(rescue(store, limit=4))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in rescuers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # Then every try was dispatched once, as try 2, and every job is at try 2
    assert not errors, errors
    assert Counter(d.job_id for d in taken) == Counter(ids)
    assert {d.attempt for d in taken} == {2}
    assert {setup.job_row(j)["attempts"] for j in ids} == {2}  # type: ignore[index]
    assert setup.lost_tries(100) == []


def test_a_takeover_by_the_same_try_and_the_rescue_never_both_win(store: JobStore) -> None:
    # A redelivered task of the dead try that takes it over first: the rescuer leaves it
    claimed(store, "job_taken", lease_left=-timedelta(seconds=1))
    job, _now, claim = store.claim("job_taken", 1, "new-host/1", LEASE)
    assert claim is not None and claim.run_id is not None
    assert rescue(store) == []
    assert store.job_row("job_taken")["attempts"] == 1  # type: ignore[index]

    # A rescue first: the dead try's task, delivered again later, is stale; the next try claims
    claimed(store, "job_rescued", lease_left=-timedelta(seconds=1))
    assert [d.attempt for d in rescue(store)] == [2]
    job, _now, claim = store.claim("job_rescued", 1, "late-host/1", LEASE)
    assert job is not None and claim is None  # stale: dropped, nothing runs
    job, _now, claim = store.claim("job_rescued", 2, "new-host/1", LEASE)
    assert claim is not None and claim.run_id is not None
    assert runs(store, "job_rescued") == [(1, "LOST", True), (2, "RUNNING", False)]


def test_the_rescuer_and_the_sweeper_do_not_both_dispatch_a_run(
    store: JobStore, kafka: KafkaTopics
) -> None:
    # Given a lost try that the sweeper would also call abandoned
    claimed(store, "job_both", lease_left=-timedelta(minutes=3))
    settings = Settings.load({"CONFIGS_SWEEPER_ABANDONEDAFTERMS": "60000"})
    producer = reliable_producer({"bootstrap.servers": kafka.bootstrap})
    sweeper = Sweeper.from_settings(settings, store, DeadLetterWriter(producer, kafka.dlt))

    # When the sweeper sweeps while the rescuer holds its rescue, and once more after
    with store.rescue(MAX_ATTEMPTS, 100) as taken:
        swept_meanwhile = sweeper.sweep()
    swept_after = sweeper.sweep()

    # Then only the rescuer dispatched it, once
    assert [d.attempt for d in taken] == [2]
    assert swept_meanwhile == [] and swept_after == []
    assert store.job_row("job_both")["attempts"] == 2  # type: ignore[index]


def test_lost_last_try_settles_the_run_as_exhausted_and_dead_letters_it(
    store: JobStore, kafka: KafkaTopics
) -> None:
    # Given lost tries with no tries left, one-time and recurring, and one with tries left
    claimed(store, "job_spent", lease_left=-timedelta(seconds=1), attempt=MAX_ATTEMPTS)
    claimed(
        store,
        "job_recurring",
        lease_left=-timedelta(seconds=1),
        attempt=MAX_ATTEMPTS,
        job_type="RECURRING",
        cron_expression="0 0 * * * *",
    )
    claimed(store, "job_retry", lease_left=-timedelta(seconds=1))
    published: list[Dispatch] = []
    writer = DeadLetterWriter(reliable_producer({"bootstrap.servers": kafka.bootstrap}), kafka.dlt)
    rescuer = Rescuer(
        store,
        published.extend,
        lambda: writer,
        topic=kafka.topic,
        max_attempts=MAX_ATTEMPTS,
        batch_size=100,
        interval=1,
    )

    # When a worker's rescuer makes one pass
    assert rescuer.rescue() == 3

    # Then the one with tries left is published as try 2; the others are settled
    assert [(d.job_id, d.attempt) for d in published] == [("job_retry", 2)]
    spent = store.job_row("job_spent")
    assert spent is not None
    assert spent["status"] == "FAILED"
    assert spent["failure_reason"].startswith(f"attempts exhausted after {MAX_ATTEMPTS} tries")
    assert "lost" in spent["failure_reason"]
    assert runs(store, "job_spent") == [(MAX_ATTEMPTS, "EXHAUSTED", True)]
    recurring = store.job_row("job_recurring")
    assert recurring is not None
    assert (recurring["status"], recurring["attempts"]) == ("SCHEDULED", 0)
    assert recurring["failed_at"] is not None
    letters = kafka.consume_all(kafka.dlt, expected=3, timeout=5)
    assert sorted(letter.key for letter in letters) == [b"job_recurring", b"job_spent"]
    assert {letter.headers["kafka_dlt-exception-fqcn"] for letter in letters} == {
        b"jobexec.AttemptsExhausted"
    }
    # And a second pass finds nothing left to do
    assert rescuer.rescue() == 0


def test_a_rescue_whose_publish_failed_is_rolled_back_and_done_again(pg_url: str) -> None:
    # PostgreSQL publishes inside the rescue's transaction (SQLite commits first, documented)
    engine = make_engine(make_url(pg_url))
    upgrade(engine)
    store = JobStore(engine)
    claimed(store, "job_a", lease_left=-timedelta(seconds=1))

    with pytest.raises(ConnectionError), store.rescue(MAX_ATTEMPTS, 100) as taken:
        assert [d.job_id for d in taken] == ["job_a"]
        raise ConnectionError("the broker is down")

    assert store.job_row("job_a")["attempts"] == 1  # type: ignore[index]
    assert runs(store, "job_a") == [(1, "RUNNING", False)]
    assert [d.attempt for d in rescue(store)] == [2]
    engine.dispose()


def test_a_handed_back_try_is_never_recorded_lost_but_published_again_at_its_attempt(
    store: JobStore,
) -> None:
    # Given a try its worker handed back at shutdown, whose requeued message never came
    # back before the lease ran out (lost with a broker restart, say)
    run_at = claimed(store, "job_back", lease_left=-timedelta(seconds=1), run_status="HANDED_BACK")

    # When a rescuer makes its pass
    assert store.lost_tries(100) == []
    assert rescue(store) == []
    with store.redeliver(timedelta(seconds=30), 100) as again:
        published = list(again)

    # Then the same try is published again: no attempt spent, nothing recorded LOST
    assert published == [Dispatch("job_back", 1, run_at, "noop")]
    row = store.job_row("job_back")
    assert row is not None and (row["status"], row["attempts"]) == ("RUNNING", 1)
    assert runs(store, "job_back") == [(1, "HANDED_BACK", False)]
    # And once: its lease is renewed, so the next pass leaves it to the delivery
    with store.redeliver(timedelta(seconds=30), 100) as again:
        assert again == []


def test_a_handed_back_try_with_a_live_lease_is_taken_over_at_once_by_its_delivery(
    store: JobStore,
) -> None:
    # Given a try handed back a moment ago: its lease still runs
    claimed(store, "job_back", lease_left=timedelta(seconds=30), run_status="HANDED_BACK")

    # When its requeued message is delivered
    job, _now, claim = store.claim("job_back", 1, "new-host/1", timedelta(seconds=30))

    # Then the delivery takes the same try over at once, and it runs again
    assert job is not None and claim is not None and claim.run_id is not None
    assert runs(store, "job_back") == [(1, "RUNNING", False)]
    with store.redeliver(timedelta(seconds=30), 100) as again:
        assert again == []
