"""RabbitMQ cut off under load: the connections of the bridge and the workers go through a TCP
proxy that drops them all and refuses new ones for a few seconds. The shared RabbitMQ server
is never stopped."""

from __future__ import annotations

import time

import pytest

from jobexec.testing.events import event_record
from jobexec.testing.rabbitmq_queue import RabbitBroker
from tests.chaos.conftest import SHORT_LEASE, ChaosStack, job_ids, scaled

pytestmark = pytest.mark.chaos

OUTAGE_S = 4.0


def test_given_a_stream_when_rabbitmq_is_cut_off_and_restored_then_none_is_lost_or_run_twice(
    chaos: ChaosStack, rabbitmq_broker: RabbitBroker
) -> None:
    # Given RabbitMQ (confirms on) reached through a proxy that can be cut, a worker, a
    # bridge, the sweeper (`jobexec scheduler --sweep-only`) and a stream of events
    proxy = chaos.use_rabbitmq_proxy(rabbitmq_broker)
    ids = job_ids("amqp", scaled(600))
    chaos.configure_chaos(
        {
            **SHORT_LEASE,
            "configs.sweeper.abandoned-after-ms": "60000",
            "configs.sweeper.interval-ms": "1000",
        }
    )
    chaos.insert_http_jobs(ids)
    chaos.launch("worker")
    chaos.launch("bridge")
    sweeper = chaos.cli.start("scheduler", "--sweep-only", env=chaos.env, name="sweeper")
    chaos.processes["sweeper"] = sweeper
    chaos.wait_ready(sweeper)
    stream = chaos.stream([event_record(j) for j in ids], per_second=len(ids) / 15)

    # When every RabbitMQ connection is reset mid-stream and new ones refused for seconds
    stream.wait_sent(0.4)
    cut_at = time.monotonic()
    proxy.stop()
    time.sleep(OUTAGE_S)
    proxy.start()
    restored_at = time.monotonic()
    stream.join()

    # Then every job completes, each executed once
    settled = chaos.wait_settled(len(ids), timeout=120 + len(ids) / 10)
    chaos.verdict(
        "rabbitmq_cut",
        ids,
        len(ids),
        restored_at,
        settled,
        outage_s=round(restored_at - cut_at, 1),
    )
    # And the outage was felt: the worker lost its broker and the bridge paused on it,
    # resuming after it
    worker_log = chaos.worker_logs()
    assert "Connection to broker lost" in worker_log, worker_log[-3000:]
    bridge_log = chaos.logs("bridge")
    assert "cannot hand records over" in bridge_log, bridge_log[-3000:]
    assert "Celery broker reachable again" in bridge_log, bridge_log[-3000:]
