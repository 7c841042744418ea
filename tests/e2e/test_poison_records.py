"""Records that are not JobEvents go to the dead-letter topic unchanged; the bridge goes on."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from tests.e2e.conftest import Stack, http_payload
from tests.support.waiting import wait_until

DLT_HEADERS = {
    "kafka_dlt-exception-fqcn",
    "kafka_dlt-exception-message",
    "kafka_dlt-original-topic",
    "kafka_dlt-original-partition",
    "kafka_dlt-original-offset",
}


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
        assert set(record.headers) >= DLT_HEADERS, record.headers
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
    # Reading a group's committed offsets does not join the group.
    consumer = Consumer(
        {"bootstrap.servers": stack.kafka.bootstrap, "group.id": stack.kafka.group_id}
    )
    try:
        [tp] = consumer.committed([TopicPartition(stack.kafka.topic, partition)], timeout=5)
        return int(tp.offset)
    finally:
        consumer.close()
