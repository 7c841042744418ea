"""Trace context hooks: dispatch span -> try span -> the http call's traceparent; tracing off."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from executors import JobRun
from executors.http import HttpExecutor, HttpRequest
from jobexec.core import tracing
from jobexec.core.config import ConfigError, Settings
from jobexec.core.sections import TracingSection
from jobexec.core.tracing_sdk import Tracing, traces_url

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(Tracing(provider))
    yield exporter
    tracing.install(None)


def task_request(headers: list[tuple[str, bytes]]) -> Any:
    """What the worker's `self.request` holds: the bridge's message headers as attributes."""
    carried = tracing.record_headers(headers) or {}
    return SimpleNamespace(**carried)


def http_headers() -> dict[str, str]:
    executor = HttpExecutor(Settings.load({}))
    try:
        run = JobRun("job-1", 1, "run-1", {"task": "http", "url": "http://127.0.0.1/hook"})
        built = executor.build(HttpRequest.from_payload(run.payload), run)
        return {k.lower(): v for k, v in built.headers.items()}
    finally:
        executor.close()


def test_given_tracing_on_when_a_run_is_dispatched_and_tried_then_one_trace_links_them(
    spans: InMemorySpanExporter,
) -> None:
    headers = tracing.dispatch_headers("job-1", 2)
    trace = tracing.start_try("job-1", 2, task_request(headers))
    sent = http_headers()
    tracing.try_outcome("success", "http")
    tracing.end_try(trace)

    dispatch, tried = spans.get_finished_spans()
    assert (dispatch.name, tried.name) == ("jobexec.dispatch", "jobexec.try")
    assert dispatch.kind == SpanKind.PRODUCER and dispatch.parent is None
    assert dispatch.attributes == {"jobexec.job_id": "job-1", "jobexec.attempt": 2}
    assert tried.parent is not None and tried.parent.span_id == dispatch.context.span_id
    assert tried.context.trace_id == dispatch.context.trace_id
    assert tried.attributes is not None
    assert tried.attributes["jobexec.outcome"] == "success"
    assert tried.attributes["jobexec.task"] == "http"
    # The call carries the try's span, in the dispatch's trace.
    assert (
        dict(headers)["traceparent"].decode().split("-")[1] == f"{dispatch.context.trace_id:032x}"
    )
    version, trace_id, parent_id, _flags = sent["traceparent"].split("-")
    assert (version, trace_id, parent_id) == (
        "00",
        f"{tried.context.trace_id:032x}",
        f"{tried.context.span_id:016x}",
    )


def test_given_tracing_on_when_the_event_has_no_traceparent_then_the_try_starts_a_new_trace(
    spans: InMemorySpanExporter,
) -> None:
    trace = tracing.start_try("job-1", 1, SimpleNamespace())
    sent = http_headers()
    tracing.end_try(trace)

    (tried,) = spans.get_finished_spans()
    assert tried.parent is None
    assert sent["traceparent"].split("-")[1] == f"{tried.context.trace_id:032x}"


def test_given_a_try_that_raises_when_it_ends_then_its_span_records_the_error(
    spans: InMemorySpanExporter,
) -> None:
    trace = tracing.start_try("job-1", 1, SimpleNamespace())
    tracing.end_try(trace, RuntimeError("database gone"))

    (tried,) = spans.get_finished_spans()
    assert not tried.status.is_ok
    assert [event.name for event in tried.events] == ["exception"]
    assert http_headers().get("traceparent") is None  # the context is gone with the try


def test_given_tracing_off_when_a_run_is_dispatched_then_no_header_and_no_try_trace() -> None:
    assert not tracing.enabled()
    assert tracing.dispatch_headers("job-1", 1) == []
    assert tracing.start_try("job-1", 1, SimpleNamespace()) is None
    assert "traceparent" not in http_headers()


def test_given_tracing_off_when_the_event_carries_a_traceparent_then_the_call_passes_it_on() -> (
    None
):
    request = task_request([("traceparent", INCOMING.encode()), ("tracestate", b"k=v")])
    trace = tracing.start_try("job-1", 1, request)
    sent = http_headers()
    tracing.end_try(trace)

    assert (sent["traceparent"], sent["tracestate"]) == (INCOMING, "k=v")
    assert "traceparent" not in http_headers()


def test_given_record_headers_when_read_then_only_usable_trace_headers_are_kept() -> None:
    assert tracing.record_headers(None) is None
    assert tracing.record_headers([("jobexec-task", b"http")]) is None
    assert tracing.record_headers([("tracestate", b"k=v")]) is None  # no traceparent: no parent
    assert tracing.record_headers([("traceparent", b"\xff")]) is None
    assert tracing.record_headers([("jobexec-task", b"http"), ("traceparent", INCOMING.encode())])
    assert tracing.record_headers({"traceparent": INCOMING}) == {"traceparent": INCOMING}


def test_given_no_endpoint_when_set_up_then_tracing_stays_off() -> None:
    assert tracing.setup(TracingSection.from_settings(Settings.load({})), "worker") is False
    assert not tracing.enabled()


def test_given_an_endpoint_when_set_up_then_spans_are_exported_under_the_process_name() -> None:
    settings = Settings.load({"CONFIGS_TRACING_OTLPENDPOINT": "http://127.0.0.1:1"})
    try:
        assert tracing.setup(TracingSection.from_settings(settings), "scheduler") is True
        assert tracing._active is not None
        resource = tracing._active.provider.resource.attributes
        assert resource["service.name"] == "jobexec-scheduler"
    finally:
        tracing.install(None)


def test_given_a_bad_endpoint_when_loaded_then_the_error_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"configs\.tracing\.otlp-endpoint"):
        Settings.load({"CONFIGS_TRACING_OTLPENDPOINT": "collector:4318"})


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        ("http://c:4318", "http://c:4318/v1/traces"),
        ("http://c:4318/", "http://c:4318/v1/traces"),
        ("https://c/otlp/v1/traces", "https://c/otlp/v1/traces"),
    ],
)
def test_given_an_endpoint_when_resolved_then_the_traces_path_is_added_once(
    endpoint: str, url: str
) -> None:
    assert traces_url(endpoint) == url


def test_given_an_endpoint_without_the_sdk_when_set_up_then_the_error_names_key_and_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jobexec.core

    monkeypatch.delattr(jobexec.core, "tracing_sdk")
    monkeypatch.setitem(sys.modules, "jobexec.core.tracing_sdk", None)  # as if not installed
    settings = Settings.load({"CONFIGS_TRACING_OTLPENDPOINT": "http://127.0.0.1:4318"})

    with pytest.raises(ConfigError, match=r"otlp-endpoint.*jobexec\[tracing\]"):
        tracing.setup(TracingSection.from_settings(settings), "worker")
    assert not tracing.enabled()
