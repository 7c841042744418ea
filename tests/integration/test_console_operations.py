"""The console's actions are the CLI's commands: same checks, same messages, on a real SQLite
job database configured through the environment, as `jobexec console` runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from jobexec.console import operations
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.store import JobStore
from jobexec.testing.config_files import ConfigFiles


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobStore]:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    env = ConfigFiles(tmp_path).write({"configs.jobDb.url": url})
    monkeypatch.setenv("SPRING_CONFIG_LOCATION", env["SPRING_CONFIG_LOCATION"])
    built = JobStore(make_engine(make_url(url)))
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


def test_retry_of_a_failed_job_schedules_it_and_says_so(store: JobStore) -> None:
    outcome = operations.job_action("retry", "job_failed")
    assert outcome.ok, outcome.message
    assert "job_failed scheduled again" in outcome.message
    row = store.job_row("job_failed")
    assert row is not None and row["status"] == "SCHEDULED"


def test_refusals_come_back_as_the_cli_words_them(store: JobStore) -> None:
    missing = operations.job_action("cancel", "job_nope")
    assert not missing.ok and missing.message == "no job job_nope"
    final = operations.job_action("cancel", "job_done")
    assert not final.ok and "already COMPLETED" in final.message
    row = store.job_row("job_done")
    assert row is not None and row["status"] == "COMPLETED"
    unknown = operations.job_action("explode", "job_done")
    assert not unknown.ok


def test_a_replay_without_kafka_settings_is_refused_naming_the_key(store: JobStore) -> None:
    outcome = operations.replay(0, 0)
    assert not outcome.ok
    assert "configs.kafka.bootstrap-servers is missing" in outcome.message
