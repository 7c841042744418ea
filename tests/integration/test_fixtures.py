"""The shared fixtures work against the real services they stand for."""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import javaproperties
import psycopg
import pytest
import redis

from jobexec.core.events import JobEvent
from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.http_recorder import HttpRecorder
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.processes import Cli
from jobexec.testing.redis_queue import RedisBroker
from jobexec.testing.tansu import TansuBroker
from jobexec.testing.waiting import wait_until


def _post(url: str, body: Any, timeout: float = 5.0) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-Job-Id": "job_1"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


def test_given_the_session_broker_then_it_advertises_a_loopback_bootstrap(
    tansu: TansuBroker,
) -> None:
    host, port = tansu.bootstrap.split(":")
    assert host == "127.0.0.1"
    assert int(port) > 0
    assert tansu.admin().list_topics(timeout=5).brokers


def test_given_fresh_topics_when_records_are_produced_then_consume_all_reads_them_back(
    kafka: KafkaTopics,
) -> None:
    assert kafka.dlt == f"{kafka.topic}.DLT"
    kafka.produce_event("job_a", attempt=2, scheduled_at=1764380000.5)
    kafka.produce(b"k", "raw", headers={"h": b"v"})
    kafka.produce(None, b"to-dlt", topic=kafka.dlt)

    records = kafka.consume_all(kafka.topic, expected=2, timeout=10)

    assert len(records) == 2
    event = next(r for r in records if r.key == b"job_a")
    assert JobEvent.parse(event.value) == JobEvent(
        "job_a", 2, datetime.fromtimestamp(1764380000.5, UTC)
    )
    raw = next(r for r in records if r.key == b"k")
    assert raw.value == b"raw"
    assert raw.headers == {"h": b"v"}
    dead = kafka.consume_all(kafka.dlt, expected=1, timeout=10)
    assert [(r.key, r.value) for r in dead] == [(None, b"to-dlt")]


def test_given_no_more_records_then_consume_all_returns_what_there_is(kafka: KafkaTopics) -> None:
    kafka.produce_event("job_only")
    started = time.monotonic()

    records = kafka.consume_all(kafka.topic, expected=2, timeout=2)

    assert [r.key for r in records] == [b"job_only"]
    assert time.monotonic() - started >= 2


@pytest.mark.parametrize("kafka", [1], indirect=True)
def test_given_an_indirect_partition_count_then_the_topics_have_it(kafka: KafkaTopics) -> None:
    topics = kafka.broker.admin().list_topics(timeout=5).topics
    assert len(topics[kafka.topic].partitions) == 1
    assert len(topics[kafka.dlt].partitions) == 1


def test_given_the_same_job_id_then_every_event_lands_on_one_partition(
    kafka: KafkaTopics,
) -> None:
    for attempt in (1, 2, 3):
        kafka.produce_event("job_same", attempt=attempt)

    records = kafka.consume_all(kafka.topic, expected=3, timeout=10)

    assert len({r.partition for r in records}) == 1
    assert [r.json()["attempt"] for r in records] == [1, 2, 3]


def test_given_a_fresh_database_then_it_exists_and_has_no_tables(pg_url: str) -> None:
    assert pg_url.startswith("postgresql+psycopg://postgres@127.0.0.1:5432/jobexec_t_")
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)


def test_given_a_redis_queue_when_cleaned_up_then_only_its_keys_are_gone() -> None:
    broker = RedisBroker()
    client = redis.Redis.from_url(broker.url)
    bystander = f"{broker.queue}-bystander"
    client.rpush(broker.queue, b"m1")
    client.rpush(f"{broker.queue}\x06\x163", b"m2")
    client.set(bystander, b"keep")
    try:
        assert broker.depth() == 2

        broker.cleanup()

        assert client.exists(broker.queue, f"{broker.queue}\x06\x163") == 0
        assert client.get(bystander) == b"keep"
    finally:
        client.delete(bystander)
        client.close()


def test_given_the_redis_broker_fixture_then_its_queue_is_unique(
    redis_broker: RedisBroker,
) -> None:
    assert redis_broker.url == "redis://127.0.0.1:6379/0"
    assert redis_broker.queue.startswith("jobs-")
    assert redis_broker.queue != RedisBroker().queue
    assert redis_broker.depth() == 0


def test_given_a_recorder_then_it_records_requests_and_answers_as_scripted(
    http_recorder: HttpRecorder,
) -> None:
    http_recorder.respond("/hook", [503, 429])

    statuses = [_post(http_recorder.url(), {"n": n}) for n in range(3)]
    _post(http_recorder.url("/other"), {"n": 9})

    assert statuses == [503, 429, 200]
    calls = http_recorder.calls("/hook")
    assert [c.json for c in calls] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert calls[0].method == "POST"
    assert calls[0].headers["x-job-id"] == calls[0].headers["X-Job-Id"] == "job_1"
    assert len(http_recorder.calls()) == 4


def test_given_a_delay_then_a_client_with_a_shorter_timeout_gives_up(
    http_recorder: HttpRecorder,
) -> None:
    http_recorder.delay("/slow", 1.5)

    with pytest.raises(TimeoutError):
        _post(http_recorder.url("/slow"), {}, timeout=0.5)

    wait_until(lambda: http_recorder.calls("/slow"), timeout=5, message="no call recorded")


def test_given_properties_then_config_files_writes_them_and_names_them(
    config_files: ConfigFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFIGS_KAFKA_BOOTSTRAPSERVERS", "elsewhere:9092")
    monkeypatch.setenv("SECRETS_DATASOURCE_PASSWORD", "leaked")
    monkeypatch.setenv("EXECUTOR_CONFIG_LOCATION", "file:/nowhere.properties")
    app = {"configs.jobDb.url": "jdbc:postgresql://db:5432/", "configs.celery.queue": "q"}

    env = config_files.write(app, {"secrets.datasource.password": "p=w:d"})

    app_path, secrets_path = tmp_path / "application.properties", tmp_path / "secrets.properties"
    assert env["SPRING_CONFIG_LOCATION"] == f"file:{app_path},file:{secrets_path}"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert not [k for k in env if k.startswith(("CONFIGS_", "SECRETS_", "EXECUTOR_CONFIG"))]
    assert javaproperties.loads(app_path.read_text()) == app
    assert app_path.read_text().splitlines()[0] == "configs.jobDb.url=jdbc:postgresql://db:5432/"
    assert javaproperties.loads(secrets_path.read_text()) == {
        "secrets.datasource.password": "p=w:d"
    }


_TRAPS_SIGTERM = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", flush=True)
while True:
    time.sleep(0.1)
"""


def test_given_a_started_process_when_stopped_then_its_log_and_status_are_kept(
    cli: Cli, config_files: ConfigFiles
) -> None:
    env = config_files.write({"configs.celery.queue": "q"})
    process = cli.spawn([sys.executable, "-c", _TRAPS_SIGTERM], env=env, name="traps")

    process.wait_for_log(r"^ready$", timeout=10)

    assert process.stop(timeout=5) == 0
    assert "ready" in process.log()


def test_given_a_process_that_outlives_the_test_then_cleanup_ends_its_group(
    cli: Cli, config_files: ConfigFiles
) -> None:
    env = config_files.write({})
    process = cli.spawn([sys.executable, "-c", "import time; time.sleep(600)"], env=env)

    cli.cleanup(show_logs=False)

    assert process.returncode == -signal.SIGTERM
