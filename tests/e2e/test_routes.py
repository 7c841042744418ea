"""Routes end to end (contract 10): two worker deployments on two queues, each runs its kind."""

from __future__ import annotations

from dataclasses import replace

import pytest

from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.task_messages import CeleryBroker

pytestmark = pytest.mark.parametrize("celery_broker", ["redis", "rabbitmq"], indirect=True)


def test_given_a_route_for_http_then_http_runs_and_their_retries_run_on_the_http_workers_only(
    stack: Stack, celery_broker: CeleryBroker
) -> None:
    http_queue = replace(celery_broker, queue=f"{celery_broker.queue}-http")  # type: ignore[type-var]
    try:
        # Given a route for http, one worker on the default queue, one named http@ on the other
        stack.configure(overrides={"configs.celery.routes.http": http_queue.queue})
        stack.start("bridge", "scheduler", "worker")
        http_worker = stack.cli.start(
            "worker", "-Q", http_queue.queue, "-n", "http@%h", "--pool", "solo", "-l", "INFO",
            env=stack.env, name="worker-http",
        )  # fmt: skip
        http_worker.wait_for_log(r"http@\S+ ready", timeout=60)
        # And an http job whose first call fails, and a noop job
        stack.http.respond("/flaky", [500])
        stack.insert("job_http", http_payload(stack.http.url("/flaky")), status="SCHEDULED",
                     attempts=0)  # fmt: skip
        stack.insert("job_noop", {"task": "noop"}, status="SCHEDULED", attempts=0)

        # When both have run
        assert stack.wait_status("job_http", "COMPLETED", "FAILED", timeout=60)["status"] == (
            "COMPLETED"
        )
        assert stack.wait_status("job_noop", "COMPLETED", "FAILED")["status"] == "COMPLETED"

        # Then both tries of the http job ran on the http worker, the noop one on the other
        http_runs = stack.store.runs("job_http")
        assert [r["attempt"] for r in http_runs] == [1, 2]
        assert all(str(r["worker"]).startswith("http@") for r in http_runs), http_runs
        assert len(stack.http.calls("/flaky")) == 2
        noop_runs = stack.store.runs("job_noop")
        assert len(noop_runs) == 1
        assert not str(noop_runs[0]["worker"]).startswith("http@"), noop_runs
    finally:
        http_queue.cleanup()
