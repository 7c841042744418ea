"""The executor registry: all-or-nothing registration, lookup and entry-point loading."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest

import executors.registry
from executors import (
    DuplicateExecutorError,
    Executor,
    ExecutorLoadError,
    JobRun,
    Registry,
    load_registry,
)
from executors.http import HttpExecutor
from executors.noop import NoopExecutor
from executors.sleep import SleepExecutor
from jobexec.core.config import Settings

SETTINGS = Settings.load({})
GROUP = "jobexec.executors"


def run_of(payload: dict[str, Any]) -> JobRun:
    return JobRun("job_1", 1, "run-1", payload)


class OtherNoop(Executor):
    """A third-party executor that claims the built-in `noop` task."""

    task = "noop"

    def execute(self, run: JobRun) -> None:
        return None


class Recording(Executor):
    """Remembers whether it was closed; every instance is kept in `built`."""

    task = "recording"
    built: ClassVar[list[Recording]] = []

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.closed = False
        self.built.append(self)

    def execute(self, run: JobRun) -> None:
        return None

    def close(self) -> None:
        self.closed = True


class Wildcard(Executor):
    """Supports any run whose payload has `any`, whatever its task."""

    task = "wildcard"

    def supports(self, run: JobRun) -> bool:
        return "any" in run.payload

    def execute(self, run: JobRun) -> None:
        return None


def test_given_two_executors_for_one_task_when_registered_then_both_are_refused_by_name() -> None:
    with pytest.raises(DuplicateExecutorError) as raised:
        Registry([NoopExecutor(SETTINGS), OtherNoop(SETTINGS)])

    message = str(raised.value)
    assert "executors.noop.NoopExecutor" in message
    assert "OtherNoop" in message
    assert "'noop'" in message
    assert raised.value.task == "noop"


def test_given_built_in_executors_when_a_run_names_a_task_then_its_executor_is_found() -> None:
    sleep, noop = SleepExecutor(SETTINGS), NoopExecutor(SETTINGS)
    registry = Registry([sleep, noop])

    assert registry.find(run_of({"task": "sleep"})) is sleep
    assert registry.find(run_of({"task": "noop"})) is noop
    assert registry.tasks == ["noop", "sleep"]


@pytest.mark.parametrize("payload", [{"task": "fax"}, {}, {"task": 7}])
def test_given_no_executor_supports_a_run_when_found_then_none_is_returned(
    payload: dict[str, Any],
) -> None:
    registry = Registry([NoopExecutor(SETTINGS)])

    assert registry.find(run_of(payload)) is None


def test_given_an_executor_with_its_own_supports_when_found_then_it_is_asked() -> None:
    wildcard = Wildcard(SETTINGS)
    registry = Registry([NoopExecutor(SETTINGS), wildcard])

    assert registry.find(run_of({"task": "fax", "any": True})) is wildcard


def test_given_a_registry_when_closed_then_every_executor_is_closed() -> None:
    recording = Recording(SETTINGS)

    Registry([recording, NoopExecutor(SETTINGS)]).close()

    assert recording.closed


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, **values: str) -> list[tuple[str, Any]]:
    """Make load_registry see the given entry points (name=module:attr) in GROUP."""
    calls: list[tuple[str, Any]] = []
    points = [EntryPoint(name, value, GROUP) for name, value in values.items()]

    def entry_points(**selection: Any) -> list[EntryPoint]:
        calls.append(("entry_points", selection))
        return [p for p in points if p.group == selection.get("group")]

    monkeypatch.setattr(executors.registry, "entry_points", entry_points)
    return calls


def test_given_entry_points_when_loaded_then_each_is_built_with_the_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_entry_points(
        monkeypatch,
        http="executors.http:HttpExecutor",
        noop="executors.noop:NoopExecutor",
        sleep="executors.sleep:SleepExecutor",
    )

    registry = load_registry(SETTINGS)

    assert calls == [("entry_points", {"group": GROUP})]
    assert registry.tasks == ["http", "noop", "sleep"]
    http = registry.find(run_of({"task": "http"}))
    assert isinstance(http, HttpExecutor)
    assert http.settings is SETTINGS
    registry.close()


def test_given_an_entry_point_that_cannot_be_imported_when_loaded_then_the_error_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_entry_points(
        monkeypatch, noop="executors.noop:NoopExecutor", fax="executors.fax:FaxExecutor"
    )

    with pytest.raises(ExecutorLoadError) as raised:
        load_registry(SETTINGS)

    assert "'fax'" in str(raised.value)
    assert "executors.fax:FaxExecutor" in str(raised.value)
    assert "ModuleNotFoundError" in str(raised.value)


def test_given_an_entry_point_that_is_not_an_executor_when_loaded_then_it_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_entry_points(monkeypatch, bad="builtins:str")

    with pytest.raises(ExecutorLoadError, match=r"'bad'.*built a str, not an executors\.Executor"):
        load_registry(SETTINGS)


def test_given_entry_points_claiming_one_task_when_loaded_then_nothing_is_registered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = __name__
    fake_entry_points(
        monkeypatch,
        recording=f"{here}:Recording",
        noop="executors.noop:NoopExecutor",
        other=f"{here}:OtherNoop",
    )
    monkeypatch.setattr(Recording, "built", [])

    with pytest.raises(DuplicateExecutorError):
        load_registry(SETTINGS)

    assert [r.closed for r in Recording.built] == [True]
