"""What a user would write instead of jobexec: a confluent-kafka consumer and a thread pool.

Reads JobEvents from a topic, hands each record to a `ThreadPoolExecutor` that POSTs to the URL
with httpx (one client, httpx's default connection pool); the polling thread commits each
called record's offset. At most twice as many records as threads are in flight. A failed call
is tried up to three times; no database, no backoff, no dead letters. After each commit it
pushes `[scheduled_at, finished_at]` onto the `--report` Redis list, so the harness can time
the drain. Runs until SIGTERM or SIGINT:

    python -m bench.plain_consumer --bootstrap HOST:PORT --topic T --group G --url URL \
        --threads 64 --report KEY
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis
from confluent_kafka import Consumer, Message, TopicPartition

# Tansu answers a fetch only when its wait runs out (the same setting jobexec's bridge uses).
FETCH_WAIT_MS = 20
CALL_TRIES = 3  # a failed call is tried again at once, as a user's loop would
POLL_S = 0.005  # how long a poll waits: finished calls are committed between polls


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plain_consumer")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = p.parse_args(argv)

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": FETCH_WAIT_MS,
            "session.timeout.ms": 6000,
        }
    )
    http = httpx.Client(follow_redirects=False, trust_env=False)
    reports = redis.Redis.from_url(args.redis)
    in_flight = threading.BoundedSemaphore(2 * args.threads)
    called: queue.SimpleQueue[tuple[Message, Any]] = queue.SimpleQueue()
    stopping = threading.Event()

    def on_assign(_consumer: Consumer, partitions: list[TopicPartition]) -> None:
        shown = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions)
        print(f"assigned {shown}", flush=True)

    def call(msg: Message) -> None:
        try:
            event: dict[str, Any] = json.loads(msg.value() or b"{}")
            job_id = str(event.get("jobId"))
            attempt = str(event.get("attempt", 1))
            for tries_left in range(CALL_TRIES - 1, -1, -1):
                try:
                    response = http.post(
                        args.url,
                        json={"job": "io"},
                        headers={
                            "X-Job-Id": job_id,
                            "X-Job-Attempt": attempt,
                            "Idempotency-Key": f"{job_id}:{attempt}",
                        },
                        timeout=10.0,
                    )
                    response.raise_for_status()
                    break
                except httpx.HTTPError as exc:
                    print(f"{job_id}: {exc!r}, {tries_left} tries left", flush=True)
                    if not tries_left:
                        raise
            called.put((msg, event.get("scheduledAt")))
        except Exception as exc:  # a user's loop logs and goes on
            print(f"record {msg.partition()}@{msg.offset()} failed: {exc!r}", flush=True)
        finally:
            in_flight.release()

    def commit_called() -> None:
        # On the polling thread: librdkafka serves a commit made from another thread late.
        while True:
            try:
                msg, scheduled_at = called.get_nowait()
            except queue.Empty:
                return
            consumer.commit(message=msg, asynchronous=True)
            reports.rpush(args.report, json.dumps([scheduled_at, time.time()]))

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _s, _f: stopping.set())
    consumer.subscribe([args.topic], on_assign=on_assign)
    with ThreadPoolExecutor(max_workers=args.threads, thread_name_prefix="call") as pool:
        while not stopping.is_set():
            commit_called()
            msg = consumer.poll(POLL_S)
            if msg is None:
                continue
            if msg.error():
                print(f"consumer error: {msg.error()}", flush=True)
                continue
            while not in_flight.acquire(timeout=POLL_S):
                commit_called()
                if stopping.is_set():
                    break
            else:
                pool.submit(call, msg)
    consumer.close()
    http.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
