"""The OpenTelemetry side of `jobexec.core.tracing`: imported only when tracing is on."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The W3C propagator itself, not the global one: OTEL_PROPAGATORS cannot change the headers.
_PROPAGATOR = TraceContextTextMapPropagator()

JOB_ID = "jobexec.job_id"
ATTEMPT = "jobexec.attempt"
TASK = "jobexec.task"
OUTCOME = "jobexec.outcome"
STOPPED = "jobexec.stopped"  # the event of a try told to stop by the watchdog
STOP_REASON = "jobexec.stop_reason"  # "limit" or "cancel"
REASON = "jobexec.reason"


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of an endpoint given as OTEL_EXPORTER_OTLP_ENDPOINT is."""
    if urlsplit(endpoint).path.rstrip("/").endswith("/v1/traces"):
        return endpoint
    return endpoint.rstrip("/") + "/v1/traces"


class TrySpan:
    """The span of one try, current in the task's context until `end`.

    The watchdog notes outcomes and ends the span from its own threads, so the first error
    status stays (the cause, not what followed from it) and the span is ended once.
    """

    def __init__(self, span: Span, headers: dict[str, str]) -> None:
        self.span = span
        self.headers = headers  # what the try's outgoing calls carry
        self._token = otel_context.attach(trace.set_span_in_context(span))
        self._lock = threading.Lock()
        self._failed = False
        self._ended = False

    def note_outcome(self, outcome: str, task: str) -> None:
        if self._ended:  # abandoned: what a late executor does is not the try's
            return
        self.span.set_attribute(OUTCOME, outcome)
        self.span.set_attribute(TASK, task)
        if outcome in ("failed", "exhausted"):
            self._fail(outcome)

    def stopped(self, why: str, reason: str) -> None:
        if self._ended:
            return
        self.span.add_event(STOPPED, {STOP_REASON: why, REASON: reason})
        self._fail(reason)

    def _fail(self, description: str) -> None:
        with self._lock:
            if self._failed:
                return
            self._failed = True
        self.span.set_status(Status(StatusCode.ERROR, description))

    def end(self, error: BaseException | None) -> None:
        """End the try's span on the task's own thread (its context is detached there)."""
        if error is not None and not self._ended:
            self.span.record_exception(error)
            self._fail(type(error).__name__)
        otel_context.detach(self._token)
        self.finish()

    def finish(self) -> None:
        """End the span, once, from any thread."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self.span.end()


class Tracing:
    """A TracerProvider and the spans jobexec makes with it."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("jobexec")

    @classmethod
    def exporting(cls, endpoint: str, service_name: str) -> Tracing:
        """Spans batched and sent to the OTLP/HTTP collector at `endpoint`."""
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(traces_url(endpoint))))
        return cls(provider)

    def dispatch(self, job_id: str, attempt: int) -> dict[str, str]:
        """A new trace for a dispatched run: its span, ended, and the headers naming it."""
        # A root: a JobEvent is a run of its own, whatever span the scheduler is in.
        span = self.tracer.start_span(
            "jobexec.dispatch",
            context=otel_context.Context(),
            kind=SpanKind.PRODUCER,
            attributes={JOB_ID: job_id, ATTEMPT: attempt},
        )
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
        span.end()
        return carrier

    def start_try(self, job_id: str, attempt: int, parent: dict[str, str]) -> TrySpan:
        """The try's span, the child of `parent`'s trace headers (a new trace without them)."""
        context = _PROPAGATOR.extract(parent) if parent else otel_context.Context()
        span = self.tracer.start_span(
            "jobexec.try",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes={JOB_ID: job_id, ATTEMPT: attempt},
        )
        headers: dict[str, str] = {}
        _PROPAGATOR.inject(headers, trace.set_span_in_context(span))
        return TrySpan(span, headers)

    def flush(self, timeout: float = 30.0) -> None:
        self.provider.force_flush(int(timeout * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()
