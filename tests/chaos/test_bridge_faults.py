"""The bridge under fire: kill -9, SIGTERM with the workers, rebalances, a poison storm.

A bridge that dies after Redis accepted a batch but before its offsets were committed hands
those records to the partition's next owner, which enqueues them again: duplicate deliveries
are expected, duplicate executions are not (the worker's claim in job_runs drops them).
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections.abc import Callable

import pytest

from jobexec.testing.events import event_record
from jobexec.testing.processes import RunningProcess
from jobexec.testing.waiting import wait_until
from tests.chaos.conftest import ChaosStack, job_ids, scaled

pytestmark = pytest.mark.chaos


def test_given_a_stream_when_the_bridge_is_killed_9_repeatedly_then_none_is_lost_or_run_twice(
    chaos: ChaosStack,
) -> None:
    # Given a worker, a bridge and a stream of thousands of claimed http jobs
    ids = job_ids("k9", scaled(2000))
    chaos.configure_chaos()
    chaos.insert_http_jobs(ids)
    chaos.launch("worker")
    bridge = chaos.launch("bridge")
    stream = chaos.stream([event_record(j) for j in ids], per_second=len(ids) / 20)

    # When the bridge is killed with SIGKILL three times mid-stream, a new one started each time
    kills: list[float] = []
    for fraction in (0.2, 0.45, 0.7):
        stream.wait_sent(fraction)
        kills.append(time.monotonic())
        bridge.kill()
        bridge = chaos.launch("bridge")
        time.sleep(1)  # let it work on the backlog before the next kill
    stream.join()

    # Then every job completes, each executed exactly once
    settled = chaos.wait_settled(len(ids), timeout=120 + len(ids) / 10)
    chaos.verdict("bridge_kill9", ids, len(ids), kills[-1], settled, bridge_kills=len(kills))


def test_given_a_stream_when_bridge_and_workers_get_sigterm_and_restart_then_none_is_lost(
    chaos: ChaosStack,
) -> None:
    # Given two workers, a bridge and a stream
    ids = job_ids("term", scaled(1000))
    chaos.configure_chaos()
    chaos.insert_http_jobs(ids)
    workers = [chaos.launch("worker", concurrency=2), chaos.launch("worker", concurrency=2)]
    bridge = chaos.launch("bridge")
    stream = chaos.stream([event_record(j) for j in ids], per_second=len(ids) / 15)

    # When bridge and workers get SIGTERM a third into the stream, then start again
    stream.wait_sent(0.33)
    stopped_at = time.monotonic()
    stopping = {"bridge": bridge, "worker-a": workers[0], "worker-b": workers[1]}
    for process in stopping.values():
        process.send_signal(signal.SIGTERM)  # once, as an orchestrator does
    codes = {name: process.proc.wait(15) for name, process in stopping.items()}
    chaos.launch("worker", wait=False)
    chaos.launch("worker", wait=False)
    chaos.launch("bridge", wait=False)
    stream.join()

    # Then each exited 0, and every job completes once
    assert set(codes.values()) == {0}, codes
    settled = chaos.wait_settled(len(ids), timeout=120 + len(ids) / 10)
    chaos.verdict("sigterm_restart", ids, len(ids), stopped_at, settled)


def test_given_a_stream_when_bridges_join_and_leave_then_none_is_lost_or_run_twice(
    chaos: ChaosStack,
) -> None:
    # Given one bridge, a worker and a stream
    ids = job_ids("rebal", scaled(1500))
    chaos.configure_chaos()
    chaos.insert_http_jobs(ids)
    chaos.launch("worker")
    first = chaos.launch("bridge")
    stream = chaos.stream([event_record(j) for j in ids], per_second=len(ids) / 40)

    def settled_after(change: Callable[[], object], members: list[RunningProcess]) -> None:
        """Make one membership change, then wait until every remaining member is assigned
        again: Tansu loses a rebalance when members leave while another is in progress."""
        before = {id(m): m.log().count(" assigned ") for m in members}
        change()
        wait_until(
            lambda: all(m.log().count(" assigned ") > before[id(m)] for m in members),
            60,
            message="the group did not settle after a membership change",
        )
        changes.append(time.monotonic())

    # When two bridges join, then the second and then the first leave, all mid-stream
    stream.wait_sent(0.1)
    changes: list[float] = []
    joined: list[RunningProcess] = []
    settled_after(lambda: joined.append(chaos.launch("bridge")), [first])
    second = joined[0]
    stream.wait_sent(0.3)
    settled_after(lambda: joined.append(chaos.launch("bridge")), [first, second])
    third = joined[1]
    stream.wait_sent(0.5)
    settled_after(lambda: second.stop(15, timeout=15), [first, third])
    stream.wait_sent(0.7)
    settled_after(lambda: first.stop(15, timeout=15), [third])
    assert (second.returncode, first.returncode) == (0, 0)
    stream.join()

    # Then every job completes, each executed exactly once
    settled = chaos.wait_settled(len(ids), timeout=120 + len(ids) / 10)
    chaos.verdict("rebalance", ids, len(ids), changes[-1], settled, membership_changes=4)


def test_given_a_poison_storm_when_the_bridge_reads_it_then_bad_go_to_the_dlt_good_complete(
    chaos: ChaosStack,
) -> None:
    # Given a worker, a bridge, and good JobEvents with 10% malformed records interleaved
    ids = job_ids("storm", scaled(900))
    chaos.configure_chaos()
    chaos.insert_http_jobs(ids)
    chaos.launch("worker")
    chaos.launch("bridge")
    rng = random.Random(20240601)
    kinds: list[Callable[[str], bytes]] = [
        lambda j: b"{not json " + j.encode(),
        lambda j: json.dumps({"attempt": 1, "note": j}).encode(),  # no jobId
        lambda j: json.dumps({"jobId": j, "attempt": "one"}).encode(),
        lambda j: json.dumps([j, 1]).encode(),  # not an object
        lambda j: json.dumps({"jobId": j, "attempt": 0}).encode(),
        lambda j: b"\xff\xfe" + j.encode(),  # not UTF-8
    ]
    records: list[tuple[bytes | None, bytes | None]] = []
    poison: list[bytes] = []
    for job_id in ids:
        records.append(event_record(job_id))
        if rng.random() < 1 / 9:  # one bad record for every nine good ones: 10% of the stream
            bad = rng.choice(kinds)(f"{job_id}_bad")
            poison.append(bad)
            records.insert(rng.randrange(len(records) + 1), (job_id.encode(), bad))

    # When the stream is produced
    started = time.monotonic()
    stream = chaos.stream(records, per_second=len(records) / 12)
    stream.join()
    settled = chaos.wait_settled(len(ids), timeout=120 + len(ids) / 10)

    # Then every good one completes, once
    dead = chaos.kafka.consume_all(chaos.kafka.dlt, expected=len(poison) + 1, timeout=8)
    chaos.verdict(
        "poison_storm",
        ids,
        len(records),
        started,
        settled,
        poison=len(poison),
        dead_lettered=len(dead),
    )
    # And every bad record is on the dead-letter topic, unchanged, and nothing else is
    assert sorted(r.value for r in dead) == sorted(poison), (
        f"{len(dead)} dead letters for {len(poison)} poison records"
    )
