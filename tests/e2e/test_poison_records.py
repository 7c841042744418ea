"""Records that are not JobEvents go to the dead-letter topic unchanged; the bridge goes on."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from jobexec.core.celeryapp import create_app
from jobexec.core.config import Settings
from jobexec.core.taskmessage import TASK_NAME
from jobexec.testing.events import DLT_HEADERS
from jobexec.testing.kafka import committed_offsets
from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.waiting import wait_until


def test_given_poison_records_when_the_bridge_reads_them_then_they_are_dead_lettered_and_it_goes_on(
    stack: Stack,
) -> None:
    # Given bridge + worker and a claimed job
    stack.configure()
    stack.start("bridge", "worker")
    stack.insert("job_after_poison", http_payload(stack.http.url("/after")))
    # Poison keyed like the good event, so they share its partition and come before it
    poison: list[bytes | None] = [
        b"{not json",  # bad JSON
        b'{"attempt": 1}',  # no jobId
        b'{"jobId": 42, "attempt": 1}',  # jobId of the wrong type
        b'{"jobId": "job_after_poison", "attempt": "one"}',  # attempt of the wrong type
        b'["job_after_poison", 1]',  # not an object
        None,  # a tombstone
    ]

    # When the poison records and then a good JobEvent are produced
    for value in poison:
        stack.kafka.produce("job_after_poison", value, headers={"origin": b"test"})  # type: ignore[arg-type]
    stack.kafka.produce_event("job_after_poison", attempt=1)

    # Then each poison record is on the DLT with its key and value unchanged and the headers
    expected_values = sorted(v or b"" for v in poison)  # a tombstone reads back as b""
    sources = {
        r.value: r
        for r in stack.kafka.consume_all(stack.kafka.topic, expected=len(poison) + 1, timeout=10)
    }
    dead = stack.kafka.consume_all(stack.kafka.dlt, expected=len(poison), timeout=30)
    assert sorted(r.value for r in dead) == expected_values, dead
    for record in dead:
        assert record.key == b"job_after_poison"
        assert set(record.headers) >= set(DLT_HEADERS), record.headers
        source = sources[record.value]
        assert record.headers["kafka_dlt-original-topic"] == stack.kafka.topic.encode()
        assert record.headers["kafka_dlt-original-partition"] == str(source.partition).encode()
        assert record.headers["kafka_dlt-original-offset"] == str(source.offset).encode()
        assert record.headers["kafka_dlt-exception-message"]
        assert record.headers["kafka_dlt-exception-fqcn"]
    # And the bridge went on: the good event after them ran
    row = stack.wait_status("job_after_poison", "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED"
    assert len(stack.http.calls("/after")) == 1
    assert stack.processes["bridge"].running()
    # And nothing else reached the DLT
    extra = stack.kafka.consume_all(stack.kafka.dlt, expected=len(poison) + 1, timeout=2)
    assert len(extra) == len(poison), extra
    # And the group committed past all the records
    last = max(sources.values(), key=lambda r: r.offset)
    wait_until(
        lambda: _committed(stack, last.partition) >= last.offset + 1,
        15,
        message=lambda: f"committed {_committed(stack, last.partition)}, want {last.offset + 1}",
    )


def _committed(stack: Stack, partition: int) -> int:
    kafka = stack.kafka
    return committed_offsets(kafka.bootstrap, kafka.group_id, kafka.topic, kafka.partitions)[
        partition
    ]


# --- hostile records and crafted tasks (contract 9a) -------------------------------------------

# Apache Kafka takes this record with its defaults (up to 1,048,588 bytes), and so does Tansu.
ONE_MEGABYTE_OF_GARBAGE = b"\xff" + b"g" * 999_999
# A dead-letter topic smaller than the record: Tansu enforces no limit, so the clients get one.
SMALL_DLT_LIMIT = {"configs.kafka.properties.message.max.bytes": "500000"}

HOSTILE: list[tuple[str, bytes | None]] = [
    ("100000-nested-brackets", b"[" * 100_000),
    ("attempt-2^40", b'{"jobId": "job_hostile", "attempt": 1099511627776}'),
    ("attempt-0", b'{"jobId": "job_hostile", "attempt": 0}'),
    ("attempt-2^31", b'{"jobId": "job_hostile", "attempt": 2147483648}'),
    ("lone-surrogate-jobId", b'{"jobId": "job_\\ud800", "attempt": 1}'),
    ("256-character-jobId", b'{"jobId": "' + b"j" * 256 + b'", "attempt": 1}'),
    ("one-megabyte-garbage", ONE_MEGABYTE_OF_GARBAGE),
    ("tombstone", None),
]


def test_given_hostile_records_when_the_bridge_reads_them_then_each_is_dead_lettered_and_it_goes_on(
    stack: Stack,
) -> None:
    # Given bridge + worker, two claimed jobs, and a dead-letter topic smaller than 1 MB
    stack.configure(overrides=SMALL_DLT_LIMIT)
    stack.start("bridge", "worker")
    stack.insert("job_before_hostile", http_payload(stack.http.url("/before")))
    stack.insert("job_after_hostile", http_payload(stack.http.url("/after")))

    # When a good event, each hostile record and a good event are produced to one partition
    key = "job_after_hostile"  # one key: one partition, in this order
    stack.kafka.produce(key, json.dumps({"jobId": "job_before_hostile", "attempt": 1}))
    for name, value in HOSTILE:
        stack.kafka.produce(key, value, headers={"case": name.encode()})  # type: ignore[arg-type]
    stack.kafka.produce_event("job_after_hostile", attempt=1)

    # Then each hostile record is on the DLT once, with the headers
    sources = stack.kafka.consume_all(stack.kafka.topic, expected=len(HOSTILE) + 2, timeout=15)
    dead = stack.kafka.consume_all(stack.kafka.dlt, expected=len(HOSTILE), timeout=60)
    assert len(dead) == len(HOSTILE), [(r.offset, r.value[:40]) for r in dead]
    by_offset = {int(r.headers["kafka_dlt-original-offset"]): r for r in dead}
    assert sorted(by_offset) == [s.offset for s in sources[1:-1]], "a record is missing"
    for source, (name, value) in zip(sources[1:-1], HOSTILE, strict=True):
        record = by_offset[source.offset]
        assert record.key == key.encode(), name
        assert set(record.headers) >= set(DLT_HEADERS), (name, record.headers)
        assert record.headers["kafka_dlt-exception-fqcn"] == b"jobexec.events.PoisonRecord", name
        if name == "one-megabyte-garbage":
            # the 1 MB one as a stand-in: no value, its size, and why it was dropped
            assert record.value == b"", name
            assert record.headers["jobexec-dlt-original-size"] == b"1000000"
            assert b"1000000 bytes dropped" in record.headers["kafka_dlt-exception-message"]
        else:
            assert record.value == (value or b""), name
            assert "jobexec-dlt-original-size" not in record.headers, name
    # And the good events around them ran once each
    for job_id, path in (("job_before_hostile", "/before"), ("job_after_hostile", "/after")):
        assert stack.wait_status(job_id, "COMPLETED", "FAILED")["status"] == "COMPLETED"
        assert len(stack.http.calls(path)) == 1, path
    # And the bridge is alive, sent nothing twice and committed past all of them
    assert stack.processes["bridge"].running()
    extra = stack.kafka.consume_all(stack.kafka.dlt, expected=len(HOSTILE) + 1, timeout=2)
    assert len(extra) == len(HOSTILE), "a dead letter was written twice"
    last = sources[-1]
    wait_until(
        lambda: _committed(stack, last.partition) >= last.offset + 1,
        15,
        message=lambda: f"committed {_committed(stack, last.partition)}, want {last.offset + 1}",
    )
    assert len(stack.http.calls("/before")) == len(stack.http.calls("/after")) == 1


@pytest.mark.parametrize(
    ("kwargs", "logged"),
    [
        pytest.param(
            {"job_id": "job_crafted", "attempt": 1099511627776},
            r"malformed task for job 'job_crafted' dropped",
            id="attempt-2^40",
        ),
        pytest.param(
            {"job_id": "job_crafted\x00", "attempt": 1},
            r"task for job 'job_crafted\\x00' rejected by the job database, not retried",
            id="jobId-the-database-refuses",
        ),
    ],
)
def test_given_a_crafted_task_on_the_queue_then_the_worker_rejects_it_once_and_it_is_gone(
    stack: Stack, kwargs: dict[str, Any], logged: str
) -> None:
    # Given a worker and a claimed job
    stack.configure()
    stack.start("worker")
    stack.insert("job_crafted", http_payload(stack.http.url("/crafted")))
    before = stack.row("job_crafted")

    # When a task whose kwargs no JobEvent can have is published straight onto the queue
    app = create_app(Settings.load(stack.env))
    app.send_task(TASK_NAME, kwargs=kwargs, queue=stack.redis.queue)

    # Then the worker logs the rejection once, and does not retry it
    worker = stack.processes["worker"]
    worker.wait_for_log(logged, timeout=30)
    time.sleep(3.0)  # with the test's 100 ms backoff, a retry would have logged by now
    assert len(re.findall(logged, worker.log())) == 1, worker.log()
    assert "database unavailable" not in worker.log()
    # And the message is gone from the queue and from the unacknowledged set
    assert stack.redis.depth() == 0
    with stack.redis.client() as client:
        unacked = b"".join(client.hvals("unacked"))
    assert b"job_crafted" not in unacked
    # And the job is unchanged and never ran
    assert stack.row("job_crafted") == before
    assert stack.http.calls("/crafted") == []
