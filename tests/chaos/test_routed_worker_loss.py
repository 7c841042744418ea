"""Routes under worker loss, on RabbitMQ: `http` runs are routed to a queue of their own
(`configs.celery.routes.http`), `sleep` runs stay on the default queue, one worker serves each.
The http queue's worker is killed with SIGKILL (main process and pool) under load: the default
queue's jobs keep completing meanwhile, and once a replacement worker is up on the http queue
every http job completes, its cut-off tries rescued as the lease rules say."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from jobexec.testing.events import event_record
from jobexec.testing.rabbitmq_queue import RabbitBroker
from jobexec.testing.waiting import wait_until
from tests.chaos.conftest import EXEC_PATH, ChaosStack, job_ids, scaled

pytestmark = pytest.mark.chaos

LEASE_S = 4.0
CALL_S = 0.5  # each http call: slow enough that the kill cuts several off
SLEEP_S = 0.2  # each sleep job on the default queue
CONCURRENCY = 2


def _completed(chaos: ChaosStack, ids: list[str]) -> int:
    states = chaos.job_states()
    return sum(1 for j in ids if states.get(j, ("", 0))[0] == "COMPLETED")


def _start_http_worker(chaos: ChaosStack, queue: str, name: str) -> None:
    """`jobexec worker -Q <http queue>`, its process named worker-<name>, its host <name>@."""
    process = chaos.cli.start(
        "worker", "-Q", queue, "-n", f"{name}@%h", "--pool", "prefork",
        "--concurrency", str(CONCURRENCY), "--loglevel", "INFO",
        env=chaos.env, name=f"worker-{name}",
    )  # fmt: skip
    chaos.processes[f"worker-{name}"] = process
    chaos.wait_ready(process)


def test_given_two_routed_queues_when_one_queues_workers_are_killed_9_then_the_other_keeps_going_and_none_is_lost(  # noqa: E501
    chaos: ChaosStack, rabbitmq_broker: RabbitBroker
) -> None:
    http_queue = replace(rabbitmq_broker, queue=f"{rabbitmq_broker.queue}-http")
    try:
        # Given RabbitMQ, a route for http, a worker on each queue and a bridge
        chaos.redis = rabbitmq_broker
        http_ids = job_ids("routed_http", scaled(120))
        sleep_ids = job_ids("routed_sleep", scaled(240))
        chaos.configure_chaos(
            {
                "configs.celery.routes.http": http_queue.queue,
                "configs.lease.duration-ms": str(int(LEASE_S * 1000)),
                "configs.lease.heartbeat-ms": "1000",
                "configs.lease.rescue-interval-ms": "1000",
            }
        )
        chaos.http.delay(EXEC_PATH, CALL_S)
        chaos.insert_http_jobs(http_ids)
        chaos.store.insert_jobs(
            [
                {
                    "job_id": job_id,
                    "job_type": "ONE_TIME",
                    "execution_mode": "IMMEDIATE",
                    "payload": {"task": "sleep", "seconds": SLEEP_S},
                    "status": "RUNNING",
                    "attempts": 1,
                }
                for job_id in sleep_ids
            ]
        )
        chaos.launch("worker", concurrency=CONCURRENCY)  # the default queue: sleep jobs
        _start_http_worker(chaos, http_queue.queue, "http-1")
        first_http = chaos.processes["worker-http-1"]
        chaos.launch("bridge")
        # And a stream of both kinds, interleaved
        records = [event_record(j) for j in sorted(http_ids + sleep_ids, key=lambda j: j[-5:])]
        chaos.stream(records, per_second=len(records) / 10).join()

        # When the http queue's worker (main process and pool) is killed with SIGKILL mid-run
        wait_until(lambda: len(chaos.http.calls(EXEC_PATH)) >= len(http_ids) // 5, 60, 0.05)
        wait_until(
            lambda: any(str(r["job_id"]).startswith("job_routed_http") for r in
                        chaos.unfinished_runs()),
            30, 0.05,
        )  # fmt: skip
        sleep_done_at_kill = _completed(chaos, sleep_ids)
        killed_at = time.monotonic()
        first_http.kill()
        # Counted once the worker is dead: a try it finished just before the kill was served.
        http_done_at_kill = _completed(chaos, http_ids)
        # The tries the dead worker held: unfinished, their lease not yet expired
        cut_off = {
            str(r["job_id"])
            for r in chaos.unfinished_runs()
            if str(r["job_id"]).startswith("job_routed_http")
        }
        assert sleep_done_at_kill < len(sleep_ids), "the default queue had no work left"

        # Then the default queue's jobs keep completing while the http queue has no worker,
        # and no http job does
        outage_s = LEASE_S + 4  # past the lease: the rescuer moves cut-off runs on meanwhile
        time.sleep(outage_s)
        sleep_done_in_outage = _completed(chaos, sleep_ids) - sleep_done_at_kill
        http_done_in_outage = _completed(chaos, http_ids) - http_done_at_kill
        assert sleep_done_in_outage > 0, "no sleep job completed while the http workers were dead"
        assert http_done_in_outage == 0, f"{http_done_in_outage} http jobs completed unserved"

        # When a replacement worker starts on the http queue
        _start_http_worker(chaos, http_queue.queue, "http-2")
        replaced_at = time.monotonic()

        # Then every job of both queues completes; only cut-off tries ran twice
        all_ids = http_ids + sleep_ids
        settled = chaos.wait_settled(len(all_ids), timeout=120 + len(http_ids) * CALL_S)
        rescued = sum(1 for j in cut_off if any(r["status"] == "LOST" for r in chaos.store.runs(j)))
        chaos.verdict(
            "routed_worker_kill9",
            http_ids,
            len(records),
            replaced_at,
            settled,
            cut_off=cut_off,
            cut_off_tries=len(cut_off),
            rescued=rescued,
            sleep_done_in_outage=sleep_done_in_outage,
            from_kill_to_settled_s=None if settled is None else round(settled - killed_at, 1),
        )
        states = chaos.job_states()
        assert all(states[j][0] == "COMPLETED" for j in sleep_ids), {
            j: states[j] for j in sleep_ids if states[j][0] != "COMPLETED"
        }
        # And attempts follow the rescue rules: an untouched job took one try; a cut-off one
        # was either rescued (try 1 LOST, try 2 succeeded) or taken over by its redelivery
        # once the lease ran out (try 1 succeeded)
        for job_id in http_ids:
            runs = [(r["attempt"], r["status"]) for r in chaos.store.runs(job_id)]
            if job_id not in cut_off:
                assert runs == [(1, "SUCCEEDED")], (job_id, runs)
            else:
                assert runs in ([(1, "LOST"), (2, "SUCCEEDED")], [(1, "SUCCEEDED")]), (
                    job_id,
                    runs,
                )
        # And every http try ran on an http worker, every sleep try on the default one
        workers = {j: {str(r["worker"]) for r in chaos.store.runs(j)} for j in http_ids + sleep_ids}
        assert all(w.startswith("http-") for j in http_ids for w in workers[j]), workers
        assert not any(w.startswith("http-") for j in sleep_ids for w in workers[j]), workers
    finally:
        http_queue.cleanup()
