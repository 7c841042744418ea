"""A Celery message lost for good: the sweeper notices the abandoned run and dispatches it again."""

from __future__ import annotations

import random
import re
import time

import pytest

from jobexec.testing.waiting import wait_until
from tests.chaos.conftest import ChaosStack, job_ids, scaled
from tests.chaos.faults import delete_messages

pytestmark = pytest.mark.chaos

ABANDONED_AFTER_MS = 10000


def test_given_enqueued_tasks_when_some_are_deleted_from_redis_then_the_sweeper_redispatches_them(
    chaos: ChaosStack,
) -> None:
    # Given the scheduler (with its sweeper) and a bridge, no worker yet, and due jobs
    ids = job_ids("lost", scaled(40))
    chaos.configure_chaos(
        {
            "configs.sweeper.abandoned-after-ms": str(ABANDONED_AFTER_MS),
            "configs.sweeper.interval-ms": "500",
        }
    )
    chaos.launch("bridge")
    chaos.launch("scheduler")
    chaos.insert_http_jobs(ids, status="SCHEDULED")
    wait_until(lambda: chaos.redis.depth() >= len(ids), 60, interval=0.1)

    # When a tenth of their Celery messages are deleted from Redis after the bridge enqueued
    # them (its offsets are committed: Kafka will not deliver them again)
    victims = set(random.Random(7).sample(ids, max(1, len(ids) // 10)))
    with chaos.redis.client() as client:
        deleted = delete_messages(client, chaos.redis.queue, victims)
    lost_at = time.monotonic()
    assert deleted == victims
    # And a worker starts
    chaos.launch("worker")

    # Then every job completes, each executed once: the lost ones as try 2, re-dispatched by
    # the sweeper once abandoned, the others as try 1
    settled = chaos.wait_settled(len(ids), timeout=60)
    chaos.verdict("lost_message", ids, len(ids), lost_at, settled, deleted=len(deleted))
    states = chaos.job_states()
    assert {states[j][1] for j in victims} == {2}, {j: states[j] for j in victims}
    assert {states[j][1] for j in set(ids) - victims} == {1}
    scheduler_log = "".join(p.log() for n, p in chaos.processes.items() if n.startswith("sched"))
    swept = set(re.findall(r"job (\S+) was abandoned RUNNING; dispatching try 2", scheduler_log))
    assert swept == victims, swept
