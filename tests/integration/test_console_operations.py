"""The console's actions are the operations `jobexec jobs` and `jobexec dlq replay` run: the
same checks and the same messages, on a real SQLite job database, through the console's app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from jobexec.console.app import Console
from jobexec.core.config import Settings
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.store import JobStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    built = JobStore(make_engine(make_url(f"sqlite:///{tmp_path / 'jobs.db'}")))
    upgrade(built.engine)
    built.insert_jobs(
        [
            {"job_id": "job_failed", "job_type": "ONE_TIME", "payload": {}, "status": "FAILED"},
            {"job_id": "job_done", "job_type": "ONE_TIME", "payload": {}, "status": "COMPLETED"},
        ]
    )
    try:
        yield built
    finally:
        built.engine.dispose()


@pytest.fixture
def console(store: JobStore, tmp_path: Path) -> Console:
    # No Kafka settings: the console starts without them, and a replay names the key.
    settings = Settings.load({"CONFIGS_JOBDB_URL": f"sqlite:///{tmp_path / 'jobs.db'}"})
    return Console(settings, store)


def test_retry_of_a_failed_job_schedules_it_and_says_so(store: JobStore, console: Console) -> None:
    outcome = console.change_job("retry", "job_failed")
    assert outcome.ok, outcome.message
    assert outcome.message == "job job_failed scheduled again, due now (was FAILED)"
    row = store.job_row("job_failed")
    assert row is not None and row["status"] == "SCHEDULED"


def test_refusals_come_back_as_the_cli_words_them(store: JobStore, console: Console) -> None:
    missing = console.change_job("cancel", "job_nope")
    assert not missing.ok and missing.message == "no job job_nope"
    final = console.change_job("cancel", "job_done")
    assert not final.ok and final.message == "job job_done is already COMPLETED, which is final"
    row = store.job_row("job_done")
    assert row is not None and row["status"] == "COMPLETED"


def test_a_job_id_with_terminal_escapes_comes_back_escaped(console: Console) -> None:
    outcome = console.change_job("pause", "job_\x1b[2J")
    assert not outcome.ok and outcome.message == "no job job_\\x1b[2J"


def test_a_replay_without_kafka_settings_is_refused_naming_the_key(console: Console) -> None:
    outcome = console.replay_record(0, 0)
    assert not outcome.ok
    assert "configs.kafka.bootstrap-servers is missing" in outcome.message
