"""`python -m bench.minimal_pipeline`: the least a Kafka-to-Celery pipeline can do, as a baseline.

A confluent-kafka consumer that takes each record, `send_task`s `bench.raw_noop` (shaped like
the bridge's `jobexec.execute_job` message) with the record's create time as `sent_at`, and
commits after each poll; no parsing, no job database, no dead-letter topic, no pausing. The raw
worker of `bench.raw_celery_app` runs the task, which pushes `[record time, its own time]` to
the report list: the record-to-task-end latency that jobexec's bridge and worker are held
against. Consumer settings are the bridge's under Tansu (`TANSU_CONSUMER_SETTINGS`).

    python -m bench.minimal_pipeline --bootstrap HOST:PORT --topic T --group G \
        --queue Q --report LIST [--broker redis://...]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from celery import Celery
from confluent_kafka import Consumer, Message, TopicPartition

from bench.raw_celery_app import RAW_TASK, create_app, raw_kwargs
from jobexec.testing.redis_queue import REDIS_URL
from jobexec.testing.tansu import TANSU_CONSUMER_SETTINGS

_BATCH = 500  # the bridge's default max-poll-records


def _setting(name: str) -> int:
    return int(TANSU_CONSUMER_SETTINGS[f"configs.kafka.consumer.{name}"])


def consumer_config(bootstrap: str, group: str) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": _setting("session-timeout-ms"),
        "fetch.wait.max.ms": _setting("fetch-max-wait-ms"),
        "max.poll.interval.ms": _setting("max-poll-interval-ms"),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.minimal_pipeline", description=__doc__)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--queue", required=True, help="the raw worker's Celery queue")
    p.add_argument("--report", required=True, help="Redis list the task reports to")
    p.add_argument("--broker", default=REDIS_URL)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    app = create_app(args.broker)
    consumer = Consumer(consumer_config(args.bootstrap, args.group))

    def _assigned(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        names = ", ".join(f"{p.topic}[{p.partition}]" for p in partitions)
        print(f"minimal pipeline assigned {names}", flush=True)

    consumer.subscribe([args.topic], on_assign=_assigned)
    sent = 0
    try:
        while not stop.is_set():
            first = consumer.poll(0.5)
            if first is None:
                continue
            # Like the bridge: wait for one record, then take what is already buffered.
            messages = [first, *consumer.consume(_BATCH - 1, timeout=0)]
            sent += _send(app, messages, args.queue, args.report)
            consumer.commit(asynchronous=True)
    finally:
        consumer.close()
        print(f"minimal pipeline stopped: {sent} tasks sent", flush=True)
    return 0


def _send(app: Celery, messages: list[Message], queue: str, report: str) -> int:
    sent = 0
    for message in messages:
        if message.error() is not None:
            continue
        _kind, stamp_ms = message.timestamp()
        app.send_task(
            RAW_TASK,
            kwargs=raw_kwargs(message.offset() or 0, stamp_ms / 1000, report),
            queue=queue,
            retry=False,
        )
        sent += 1
    return sent


if __name__ == "__main__":
    sys.exit(main())
