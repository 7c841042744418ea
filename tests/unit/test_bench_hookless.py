"""The tracing-overhead baseline: `bench.hookless` leaves no tracing hook in its process."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest

from bench.hookless import NO_OPS, remove_hooks
from jobexec.core import tracing


def hooks() -> set[str]:
    """The public functions of jobexec.core.tracing that the processes call (all but install)."""
    return {
        name
        for name, value in vars(tracing).items()
        if inspect.isfunction(value)
        and value.__module__ == tracing.__name__
        and not name.startswith("_")
    } - {"install"}


def test_given_the_tracing_module_when_compared_then_every_hook_has_a_no_op() -> None:
    assert set(NO_OPS) == hooks()


def test_given_the_hooks_removed_when_called_then_they_answer_as_tracing_off_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in NO_OPS:  # put the real ones back after the test
        monkeypatch.setattr(tracing, name, getattr(tracing, name))

    remove_hooks()

    assert all(getattr(tracing, name) is NO_OPS[name] for name in NO_OPS)
    assert tracing.dispatch_headers("job-1", 1) == []
    assert (
        tracing.record_headers([("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")])
        is None
    )
    assert tracing.start_try("job-1", 1, SimpleNamespace(traceparent="x")) is None
    assert dict(tracing.outgoing_headers()) == {}
    assert tracing.enabled() is False
