"""Contract 12: one W3C trace from the scheduler's dispatch to the http executor's call."""

from __future__ import annotations

import json

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.conftest import Stack, http_payload
from tests.support.waiting import wait_until

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def exported_spans(stack: Stack) -> dict[str, tuple[str, str, str]]:
    """Spans the processes POSTed to the recorder's /v1/traces: name -> (trace, span, parent)."""
    found: dict[str, tuple[str, str, str]] = {}
    for call in stack.http.calls("/v1/traces"):
        request = ExportTraceServiceRequest()
        request.ParseFromString(call.body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    found[span.name] = (
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                    )
    return found


def test_given_tracing_on_when_the_scheduler_dispatches_an_http_job_then_the_call_is_in_its_trace(
    stack: Stack,
) -> None:
    # Given the three processes exporting spans to a local OTLP/HTTP receiver
    stack.configure(overrides={"configs.tracing.otlp-endpoint": stack.http.url("")})
    stack.env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # export within a test's patience
    stack.start("bridge", "worker", "scheduler")

    # When a due http job is dispatched and run
    stack.insert(
        "job_traced", http_payload(stack.http.url("/traced")), status="SCHEDULED", attempts=0
    )
    row = stack.wait_status("job_traced", "COMPLETED", "FAILED")
    assert row["status"] == "COMPLETED", row

    # Then the JobEvent on the topic carries the scheduler's traceparent
    (record,) = stack.kafka.consume_all(stack.kafka.topic, 1)
    _version, trace_id, dispatch_id, _flags = record.headers["traceparent"].decode().split("-")
    # And the called URL received a traceparent of the same trace, from the try's own span
    (call,) = stack.http.calls("/traced")
    _v, call_trace, call_parent, _f = call.headers["traceparent"].split("-")
    assert call_trace == trace_id
    assert call_parent != dispatch_id

    # And the spans exported make one trace: dispatch -> try -> the call's parent
    def both_exported() -> dict[str, tuple[str, str, str]] | None:
        spans = exported_spans(stack)
        return spans if {"jobexec.dispatch", "jobexec.try"} <= spans.keys() else None

    spans = wait_until(
        both_exported,
        20,
        interval=0.2,
        message=lambda: f"spans exported: {exported_spans(stack)}\n{stack.log('worker')}",
    )
    assert spans is not None
    assert spans["jobexec.dispatch"] == (trace_id, dispatch_id, "")
    assert spans["jobexec.try"] == (trace_id, call_parent, dispatch_id)


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
