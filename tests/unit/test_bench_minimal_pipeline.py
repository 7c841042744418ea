"""The latency baseline: `bench.minimal_pipeline` sends one no-op task per record, timed from it."""

from __future__ import annotations

from typing import Any

from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError

from bench.minimal_pipeline import _send
from bench.raw_celery_app import RAW_TASK


class _Record:
    def __init__(self, offset: int, stamp_ms: int, error: KafkaError | None = None) -> None:
        self._offset, self._stamp_ms, self._error = offset, stamp_ms, error

    def error(self) -> KafkaError | None:
        return self._error

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, self._stamp_ms


class _App:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append({"name": name, **options})


def test_given_records_when_sent_then_each_task_carries_its_record_create_time() -> None:
    app = _App()
    records = [_Record(7, 1_700_000_000_250), _Record(8, 1_700_000_000_500)]

    sent = _send(app, records, "bench-q", "bench-q.report")  # type: ignore[arg-type]

    assert sent == 2
    assert [t["name"] for t in app.sent] == [RAW_TASK, RAW_TASK]
    assert [t["queue"] for t in app.sent] == ["bench-q", "bench-q"]
    assert [t["kwargs"]["sent_at"] for t in app.sent] == [1_700_000_000.25, 1_700_000_000.5]
    assert {t["kwargs"]["report"] for t in app.sent} == {"bench-q.report"}


def test_given_an_error_in_the_poll_when_sent_then_it_makes_no_task() -> None:
    app = _App()
    records = [_Record(0, 0, KafkaError(KafkaError._PARTITION_EOF)), _Record(1, 1000)]

    sent = _send(app, records, "q", "q.report")  # type: ignore[arg-type]

    assert sent == 1
    assert [t["kwargs"]["sent_at"] for t in app.sent] == [1.0]
