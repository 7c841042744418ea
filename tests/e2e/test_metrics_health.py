"""Metrics and health endpoints of the real processes: the figures move when work flows."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest

from jobexec.testing.network import free_port
from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.waiting import wait_until


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^(\w+)(\{([^}]*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(4))
    return total


def start_with_metrics(stack: Stack, name: str, port: int, pool: str = "prefork") -> None:
    saved = stack.env
    stack.env = {**saved, "CONFIGS_METRICS_PORT": str(port), "CONFIGS_METRICS_HOST": "127.0.0.1"}
    try:
        stack.start(name, pool=pool)
    finally:
        stack.env = saved


@pytest.mark.parametrize("pool", ["prefork", "threads", "gevent"])
def test_bridge_scheduler_and_worker_count_what_flows_and_report_ready(
    stack: Stack, pool: str
) -> None:
    # Given the three processes, each with its metrics and health port; the worker of this pool.
    stack.configure()
    ports = {name: free_port() for name in ("bridge", "scheduler", "worker")}
    for name, port in ports.items():
        start_with_metrics(stack, name, port, pool=pool)

    # When two jobs succeed, one fails for good and one poison record arrives.
    stack.http.respond("/bad", [400])
    stack.insert("job_ok1", http_payload(stack.http.url("/ok")), status="SCHEDULED", attempts=0)
    stack.insert("job_ok2", http_payload(stack.http.url("/ok")), status="SCHEDULED", attempts=0)
    stack.insert("job_bad", http_payload(stack.http.url("/bad")), status="SCHEDULED", attempts=0)
    stack.kafka.produce(b"junk", b"{not json")
    for job_id in ("job_ok1", "job_ok2"):
        stack.wait_status(job_id, "COMPLETED")
    stack.wait_status("job_bad", "FAILED")

    # Then every process counts it.
    def scraped(name: str, metric_name: str, **labels: str) -> float:
        return metric(get(ports[name], "/metrics")[1], metric_name, **labels)

    wait_until(
        lambda: (
            scraped("bridge", "jobexec_bridge_tasks_enqueued_total") >= 3
            and scraped("bridge", "jobexec_dead_lettered_total", reason="poison") >= 1
        ),
        15,
        message=lambda: get(ports["bridge"], "/metrics")[1],
    )
    assert scraped("bridge", "jobexec_bridge_records_consumed_total") >= 4
    # The paused gauges have a series from the start, 0 while not paused: alerts can see them.
    bridge_metrics = get(ports["bridge"], "/metrics")[1]
    for reason in ("broker_down", "backpressure"):
        assert f'jobexec_bridge_paused{{reason="{reason}"}} 0.0' in bridge_metrics, bridge_metrics
    wait_until(
        lambda: scraped("bridge", "jobexec_bridge_commits_total", result="ok") >= 1,
        15,
        message="the bridge never counted a commit",
    )
    assert scraped("scheduler", "jobexec_scheduler_dispatched_total", source="schedule") == 3
    worker_metrics = get(ports["worker"], "/metrics")[1]
    assert metric(worker_metrics, "jobexec_job_outcomes_total", task="http", result="success") == 2
    assert metric(worker_metrics, "jobexec_job_outcomes_total", task="http", result="failed") == 1
    assert metric(worker_metrics, "jobexec_job_run_seconds_count", task="http") == 3

    # And every process says it is alive and ready.
    for name in ("bridge", "scheduler", "worker"):
        assert get(ports[name], "/healthz")[0] == 200
        status, body = get(ports[name], "/readyz")
        assert status == 200, body
        assert json.loads(body)["ready"] is True


def test_scheduler_is_not_ready_while_its_database_is_unreachable(stack: Stack) -> None:
    # Given a scheduler whose database URL points at a port nothing listens on.
    stack.configure()
    stack.env = {
        **stack.env,
        "CONFIGS_JOBDB_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
    }
    port = free_port()
    start_with_metrics(stack, "scheduler", port)

    def readiness() -> dict[str, object] | None:
        status, body = get(port, "/readyz")
        return json.loads(body) if status == 503 else None

    answer = wait_until(readiness, 20, message="the scheduler never reported not ready")
    assert answer["checks"] == {"database": False, "kafka": True}
    assert get(port, "/healthz")[0] == 200  # alive: it keeps trying


def test_worker_is_not_ready_while_its_database_is_unreachable(stack: Stack) -> None:
    # Given a worker whose database URL points at a port nothing listens on.
    stack.configure()
    stack.env = {
        **stack.env,
        "CONFIGS_JOBDB_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
    }
    port = free_port()
    start_with_metrics(stack, "worker", port)

    def readiness() -> dict[str, object] | None:
        try:
            status, body = get(port, "/readyz")
        except OSError:  # not listening yet
            return None
        return json.loads(body) if status == 503 else None

    answer = wait_until(readiness, 30, message="the worker never reported not ready")
    assert answer["checks"] == {"celery_broker": True, "database": False}
