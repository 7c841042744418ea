"""Contract 12: one W3C trace from the scheduler's dispatch to the http executor's call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from jobexec.testing.plugins import with_test_executors
from jobexec.testing.stack import Stack, http_payload
from jobexec.testing.waiting import wait_until

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def exported_spans(stack: Stack) -> list[tuple[str, str, str, str]]:
    """Spans the processes POSTed to the recorder's /v1/traces: (name, trace, span, parent)."""
    found: list[tuple[str, str, str, str]] = []
    for call in stack.http.calls("/v1/traces"):
        request = ExportTraceServiceRequest()
        request.ParseFromString(call.body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                found += [
                    (s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex())
                    for s in scope.spans
                ]
    return sorted(found)


@pytest.mark.parametrize("pool", ["prefork", "threads", "gevent"])
def test_given_tracing_on_when_the_scheduler_dispatches_an_http_job_then_the_call_is_in_its_trace(
    stack: Stack, pool: str
) -> None:
    # Given the three processes, the worker on `pool`, exporting spans to a local OTLP receiver
    stack.configure(overrides={"configs.tracing.otlp-endpoint": stack.http.url("")})
    stack.env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # export within a test's patience
    stack.start("bridge", "worker", "scheduler", pool=pool)

    # When a due http job is dispatched and run: its first try answered 503, its retry 200
    stack.http.respond("/traced", [503])
    stack.insert(
        "job_traced", http_payload(stack.http.url("/traced")), status="SCHEDULED", attempts=0
    )
    row = stack.wait_status("job_traced", "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED", row

    # Then the JobEvent on the topic carries the scheduler's traceparent
    (record,) = stack.kafka.consume_all(stack.kafka.topic, 1)
    _version, trace_id, dispatch_id, _flags = record.headers["traceparent"].decode().split("-")
    # And both calls carry a traceparent of that trace, each from its own try's span
    calls = stack.http.calls("/traced")
    assert len(calls) == 2
    parents = [c.headers["traceparent"].split("-") for c in calls]
    assert [p[1] for p in parents] == [trace_id, trace_id]
    try_ids = {p[2] for p in parents}
    assert len(try_ids) == 2 and dispatch_id not in try_ids

    # And the spans exported make one trace: dispatch -> each try -> its call
    expected = sorted(
        [("jobexec.dispatch", trace_id, dispatch_id, "")]
        + [("jobexec.try", trace_id, span_id, dispatch_id) for span_id in try_ids]
    )
    wait_until(
        lambda: exported_spans(stack) == expected,
        20,
        interval=0.2,
        message=lambda: f"spans exported: {exported_spans(stack)}, expected {expected}",
    )


def exported_try_spans(stack: Stack) -> list[tuple[int, str, str, list[tuple[str, str]]]]:
    """The try spans exported: (status code, its message, outcome, [(event, stop reason)])."""
    found = []
    for call in stack.http.calls("/v1/traces"):
        request = ExportTraceServiceRequest()
        request.ParseFromString(call.body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for s in scope.spans:
                    if s.name != "jobexec.try":
                        continue
                    attributes = {a.key: a.value.string_value for a in s.attributes}
                    events = [
                        (e.name, a.value.string_value)
                        for e in s.events
                        for a in e.attributes
                        if a.key == "jobexec.stop_reason"
                    ]
                    found.append(
                        (s.status.code, s.status.message, attributes["jobexec.outcome"], events)
                    )
    return found


@pytest.mark.parametrize("pool", ["prefork", "threads", "gevent"])
def test_given_tracing_on_when_a_hung_try_passes_its_limit_then_its_span_records_the_limit(
    stack: Stack, tmp_path: Path, pool: str
) -> None:
    # Given a worker of this pool exporting spans, one try per run, and an executor that hangs
    stack.configure(
        overrides={
            "configs.tracing.otlp-endpoint": stack.http.url(""),
            "configs.retry.max-attempts": "1",
            "configs.executors.cancel-grace-ms": "1000",
        }
    )
    stack.env = with_test_executors(stack.env, tmp_path / "plugins")
    stack.env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    stack.start("bridge", "worker", pool=pool)

    # When its try passes its limit of 1 s: the watchdog ends it (its prefork child ended,
    # its greenlet killed, or its thread abandoned, after the grace)
    stack.insert("job_hung", {"task": "hang", "max_run_seconds": 1})
    stack.kafka.produce_event("job_hung")
    row = stack.wait_status("job_hung", "FAILED", "COMPLETED")
    assert row["status"] == "FAILED"

    # Then the try's span is exported with status ERROR naming the limit, and the stop event
    reason = "run exceeded its time limit of 1 s"
    expected = [(2, reason, "exhausted", [("jobexec.stopped", "limit")])]
    wait_until(
        lambda: exported_try_spans(stack) == expected,
        20,
        interval=0.2,
        message=lambda: f"try spans exported: {exported_try_spans(stack)}, expected {expected}",
    )


def test_given_tracing_off_when_events_run_then_only_a_carried_traceparent_reaches_the_call(
    stack: Stack,
) -> None:
    # Given bridge and worker with no OTLP endpoint, and two runs as the scheduler leaves them
    stack.configure()
    stack.start("bridge", "worker")
    stack.insert("job_carried", http_payload(stack.http.url("/carried")))
    stack.insert("job_plain", http_payload(stack.http.url("/plain")))

    # When one JobEvent carries a trace context (another scheduler's) and one carries none
    event = {"jobId": "job_carried", "attempt": 1, "scheduledAt": 1.0}
    stack.kafka.produce(
        "job_carried",
        json.dumps(event),
        headers=[("traceparent", INCOMING.encode()), ("tracestate", b"vendor=1")],
    )
    stack.kafka.produce_event("job_plain")
    for job_id in ("job_carried", "job_plain"):
        row = stack.wait_status(job_id, "COMPLETED", "FAILED")
        assert row["status"] == "COMPLETED", row

    # Then the carried trace context reaches the called URL unchanged, and nothing is invented
    (carried,) = stack.http.calls("/carried")
    assert (carried.headers.get("traceparent"), carried.headers.get("tracestate")) == (
        INCOMING,
        "vendor=1",
    )
    (plain,) = stack.http.calls("/plain")
    assert plain.headers.get("traceparent") is None
    assert stack.http.calls("/v1/traces") == []
