"""W3C trace context from the scheduler's dispatch to the http executor's call (README: Tracing).

The scheduler starts a trace per dispatched run (span `jobexec.dispatch`) and puts its
`traceparent` (and `tracestate`) on the JobEvent's Kafka headers; the bridge carries them into
the Celery task's message headers (which Celery's retries keep); the worker's span of the try
(`jobexec.try`) is their child, and the `http` executor sends the try's `traceparent` on.

Spans are exported over OTLP/HTTP only when `configs.tracing.otlp-endpoint` is set; then the
OpenTelemetry SDK (`jobexec[tracing]`) is imported (`tracing_sdk`). Unset, this module
imports nothing of OpenTelemetry and each hook is one branch: no span is made, and a trace
context that came in is passed on unchanged (W3C: a participant that does not trace forwards
it), so the called URL still sees the caller's trace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

from jobexec.core.config import ConfigError

if TYPE_CHECKING:
    from jobexec.core.sections import TracingSection
    from jobexec.core.tracing_sdk import Tracing, TrySpan

ENDPOINT_KEY = "configs.tracing.otlp-endpoint"
TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
HEADERS = (TRACEPARENT, TRACESTATE)

# The SDK side, when export is on; None (the default) makes every hook a no-op.
_active: Tracing | None = None
# The running try's trace: its span (tracing on) and the headers its outgoing calls carry.
_current: ContextVar[TryTrace | None] = ContextVar("jobexec_trace", default=None)


def setup(section: TracingSection, process: str) -> bool:
    """Export spans when `configs.tracing.otlp-endpoint` is set; True when tracing is on.

    `process` names the service (`jobexec-<process>`) unless `configs.tracing.service-name`
    is set. ConfigError when the endpoint is set but the SDK is not installed.
    """
    if not section.endpoint:
        return False
    try:
        from jobexec.core import tracing_sdk
    except ImportError:
        raise ConfigError(
            ENDPOINT_KEY,
            "is set but the OpenTelemetry SDK is not installed (pip install 'jobexec[tracing]')",
            section.endpoint_source,
        ) from None
    name = section.service_name or f"jobexec-{process}"
    install(tracing_sdk.Tracing.exporting(section.endpoint, name))
    return True


def install(tracing: Tracing | None) -> None:
    """Make `tracing` the active one (tests install one over an in-memory exporter); None: off."""
    global _active
    if _active is not None and _active is not tracing:
        _active.shutdown()
    _active = tracing


def enabled() -> bool:
    """Whether spans are made and exported."""
    return _active is not None


def shutdown(timeout: float = 30.0) -> None:
    """Export the spans still buffered, waiting at most `timeout` seconds; called as a process
    stops."""
    if _active is not None:
        _active.flush(timeout)


# --- the scheduler ----------------------------------------------------------------------------


def dispatch_headers(job_id: str, attempt: int) -> list[tuple[str, bytes]]:
    """The Kafka headers of a dispatched run's JobEvent: its new trace; [] with tracing off."""
    if _active is None:
        return []
    return [(k, v.encode()) for k, v in _active.dispatch(job_id, attempt).items()]


# --- the bridge -------------------------------------------------------------------------------


RawHeaders = Sequence[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None


def record_headers(raw: RawHeaders) -> dict[str, str] | None:
    """The trace headers of a Kafka record (`Message.headers()`), as text; None without any.

    Passed on whether tracing is on or not: the bridge makes no span, it only carries them.
    """
    if not raw:
        return None
    found: dict[str, str] | None = None
    # confluent-kafka gives a list; the ABC check for a mapping is the slow path (0.1 µs)
    items = raw if isinstance(raw, list) else raw.items() if isinstance(raw, Mapping) else raw
    for name, value in items:
        if name in HEADERS and value is not None:
            try:
                text = value.decode("ascii") if isinstance(value, bytes) else value
            except UnicodeDecodeError:
                continue  # not a W3C value: the worker starts a new trace
            if found is None:
                found = {}
            found[name] = text
    return found if found and TRACEPARENT in found else None


# --- the worker -------------------------------------------------------------------------------


class TryTrace:
    """The trace of one try, between `start_try` and `end_try`.

    `headers` are what the try's outgoing calls carry: its span's, or the incoming ones passed
    on with tracing off (then `span` is None).
    """

    __slots__ = ("headers", "span", "token")

    def __init__(self, headers: Mapping[str, str], span: TrySpan | None) -> None:
        self.headers = headers
        self.span = span
        self.token: Token[TryTrace | None] = _current.set(self)


def start_try(job_id: str, attempt: int, request: Any) -> TryTrace | None:
    """Start the try's span, the child of the trace headers on the Celery task `request`.

    With tracing off, the incoming headers (if any) are only passed on to outgoing calls;
    None when there is nothing to do.
    """
    incoming = getattr(request, TRACEPARENT, None)
    if _active is None:
        if not isinstance(incoming, str):
            return None
        carried = {TRACEPARENT: incoming}
        state = getattr(request, TRACESTATE, None)
        if isinstance(state, str):
            carried[TRACESTATE] = state
        return TryTrace(carried, None)
    parent: dict[str, str] = {}
    for name in HEADERS:
        value = getattr(request, name, None)
        if isinstance(value, str):
            parent[name] = value
    span = _active.start_try(job_id, attempt, parent)
    return TryTrace(span.headers, span)


def current_try() -> TryTrace | None:
    """The running try's trace; kept by whoever acts on the try from another thread."""
    return _current.get()


def try_outcome(outcome: str, task: str, trace: TryTrace | None = None) -> None:
    """Note the try's outcome and executor task on its span (`trace`'s, else the running
    try's): the watchdog records outcomes from a thread of its own."""
    if _active is None:
        return
    if trace is None:
        trace = _current.get()
    if trace is not None and trace.span is not None:
        trace.span.note_outcome(outcome, task)


def try_stopped(trace: TryTrace | None, why: str, reason: str) -> None:
    """Note on the try's span that it was told to stop (`why`: "limit" or "cancel") and why."""
    if trace is not None and trace.span is not None:
        trace.span.stopped(why, reason)


def abandon_try(trace: TryTrace | None, flush: bool = False) -> None:
    """End the span of a try whose executor will not return in time (its thread abandoned, its
    process about to end); `flush` exports it at once, before the process ends."""
    if trace is None or trace.span is None:
        return
    trace.span.finish()
    if flush:
        shutdown(timeout=2.0)  # a collector that is down must not hold the process's end


def end_try(trace: TryTrace | None, error: BaseException | None = None) -> None:
    """End the try's span (recording `error`, when the task raised one)."""
    if trace is None:
        return
    _current.reset(trace.token)
    if trace.span is not None:
        trace.span.end(error)


def outgoing_headers() -> Mapping[str, str]:
    """The trace headers the running try's outgoing calls carry; empty when it has none."""
    current = _current.get()
    return current.headers if current is not None else {}
