"""What a replay decides for each dead letter, on real PostgreSQL and SQLite: a dry run (no
Kafka) re-arms only a fresh exhausted-run record of a job that exhausted its tries, refuses the
crafted and the stale, and skips what was replayed before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from jobexec.core.config import Settings
from jobexec.core.db.admin import JobAdmin
from jobexec.core.db.store import JobStore
from jobexec.core.events import JobEvent, Origin
from jobexec.core.outcomes import EXHAUSTED_FQCN, exhaustion_reason
from jobexec.operations.deadletters import DltRecord
from jobexec.operations.replay import Replayer

DLT = "job-events.DLT"
NOW = datetime.now(UTC)


def _letter(offset: int, key: str, value: bytes, fqcn: str, at: datetime = NOW) -> DltRecord:
    headers = (("kafka_dlt-exception-fqcn", fqcn.encode()), ("traceparent", b"00-x"))
    return DltRecord(Origin(DLT, 0, offset), at, key.encode(), value, headers)


def _failed(job_id: str, reason: str, failed_at: datetime = NOW) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "job_type": "ONE_TIME",
        "payload": {},
        "status": "FAILED",
        "attempts": 3,
        "failure_reason": reason,
        "failed_at": failed_at,
    }


def _event(job_id: str) -> bytes:
    return JobEvent(job_id, 3, None).to_json()


def test_a_dry_run_says_what_each_record_would_do_and_changes_nothing(store: JobStore) -> None:
    exhausted = exhaustion_reason(3, "HTTP 503")
    store.insert_jobs(
        [
            _failed("job_fresh", exhausted),
            _failed("job_400", "HTTP 400 Bad Request"),
            _failed("job_stale", exhausted, NOW + timedelta(minutes=5)),
        ]
    )
    JobAdmin(store).mark_replayed(DLT, 0, 6)
    replayer = Replayer(store, Settings.load({}), dry_run=True)
    records = [
        _letter(0, "job_fresh", _event("job_fresh"), EXHAUSTED_FQCN),
        _letter(1, "job_400", _event("job_400"), EXHAUSTED_FQCN),
        _letter(2, "job_stale", _event("job_stale"), EXHAUSTED_FQCN),
        _letter(3, "job_other", _event("job_fresh"), EXHAUSTED_FQCN),
        _letter(4, "job_x", b"not json", "jobexec.events.PoisonRecord"),
        _letter(5, "job_gone", _event("job_gone"), EXHAUSTED_FQCN),
        _letter(6, "job_fresh", _event("job_fresh"), EXHAUSTED_FQCN),
    ]

    outcomes = list(replayer.replay(records))

    assert [o.verdict for o in outcomes] == [
        "replayed",
        "refused",
        "refused",
        "refused",
        "replayed",
        "refused",
        "skipped",
    ]
    assert [o.origin.offset for o in outcomes] == list(range(7))
    fresh, failed_for_good, stale, other_key, poison, gone, again = (o.message for o in outcomes)
    assert fresh == (
        "would replay 0:0 -> job-events: would re-arm FAILED job job_fresh (RUNNING, attempt 1)"
    )
    assert failed_for_good.startswith("would refuse 0:1: job job_400 failed for good")
    assert stale.startswith("would refuse 0:2: stale: the record")
    assert "its key 'job_other' is not the job id 'job_fresh'" in other_key
    assert poison.startswith("would replay 0:4 -> job-events: poison record")
    assert gone == "would refuse 0:5: job job_gone does not exist"
    assert again.startswith("skipped 0:6: already replayed at ")
    assert not replayer.tally.ok
    assert replayer.tally.message == (
        "would replay 2, skipped 1 already replayed, refused 4, failed 0 "
        "(job-events.DLT -> job-events)"
    )
    row = store.job_row("job_fresh")
    assert row is not None and (row["status"], row["attempts"]) == ("FAILED", 3)
    assert set(JobAdmin(store).replayed(DLT)) == {(0, 6)}


def test_a_tally_of_replayed_and_skipped_records_only_is_ok(store: JobStore) -> None:
    JobAdmin(store).mark_replayed(DLT, 0, 0)
    replayer = Replayer(store, Settings.load({}), dry_run=False)

    [outcome] = replayer.replay([_letter(0, "job_a", _event("job_a"), EXHAUSTED_FQCN)])

    assert outcome.verdict == "skipped" and replayer.tally.ok
    assert replayer.tally.message.startswith("replayed 0, skipped 1 already replayed, refused 0")
