"""RabbitMQ stopped and started again under load: a private node of this test (its own name,
ports and data directory), the bridge publishing with confirms into a durable queue of
persistent messages. The shared RabbitMQ server is never stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobexec.testing.events import event_record
from jobexec.testing.rabbitmq_queue import RabbitBroker
from jobexec.testing.waiting import wait_until
from tests.chaos.conftest import EXEC_PATH, SHORT_LEASE, ChaosStack, job_ids, scaled
from tests.chaos.private_rabbitmq import PrivateRabbitMQ, rabbitmq_missing

pytestmark = pytest.mark.chaos


@pytest.fixture
def private_rabbitmq(tmp_path: Path) -> Iterator[PrivateRabbitMQ]:
    missing = rabbitmq_missing()
    if missing is not None:
        pytest.fail(f"a private RabbitMQ node cannot start here: {missing}")
    node = PrivateRabbitMQ(tmp_path / "rabbitmq")
    try:
        node.start()
        yield node
    finally:
        node.close()


def test_given_a_stream_when_rabbitmq_is_stopped_and_restarted_then_none_is_lost_or_run_twice(
    chaos: ChaosStack, private_rabbitmq: PrivateRabbitMQ
) -> None:
    # Given a private RabbitMQ as the Celery broker, a worker, a bridge, the sweeper and a
    # stream of events
    chaos.redis = RabbitBroker(url=private_rabbitmq.url)
    ids = job_ids("rmqrestart", scaled(600))
    chaos.configure_chaos(
        {
            **SHORT_LEASE,
            "configs.sweeper.abandoned-after-ms": "120000",
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

    # When the node is stopped mid-stream, with tasks queued and running, and started again
    # on the same data directory
    stream.wait_sent(0.4)
    wait_until(lambda: len(chaos.http.calls(EXEC_PATH)) >= len(ids) // 10, 60, interval=0.05)
    stopped_at = time.monotonic()
    private_rabbitmq.stop()
    down_s = time.monotonic() - stopped_at
    boot_s = private_rabbitmq.start()
    restarted_at = time.monotonic()
    calls_at_restart = len(chaos.http.calls(EXEC_PATH))
    # And work resumes: the worker reconnects and runs jobs again
    wait_until(lambda: len(chaos.http.calls(EXEC_PATH)) > calls_at_restart, 120, interval=0.05)
    resumed_s = time.monotonic() - restarted_at
    stream.join()

    # Then every job completes, each executed once
    settled = chaos.wait_settled(len(ids), timeout=180 + len(ids) / 10)
    chaos.verdict(
        "rabbitmq_restart",
        ids,
        len(ids),
        restarted_at,
        settled,
        stop_s=round(down_s, 1),
        boot_s=round(boot_s, 1),
        resumed_s=round(resumed_s, 1),
        outage_s=round(restarted_at - stopped_at, 1),
        from_stop_to_settled_s=None if settled is None else round(settled - stopped_at, 1),
    )
    # And the outage was felt and recovered from: the worker lost its broker, the bridge
    # paused on it and resumed
    worker_log = chaos.worker_logs()
    assert "Connection to broker lost" in worker_log, worker_log[-3000:]
    bridge_log = chaos.logs("bridge")
    assert "cannot hand records over" in bridge_log, bridge_log[-3000:]
    assert "Celery broker reachable again" in bridge_log, bridge_log[-3000:]
