"""The executor registry: picks the executor for a run and refuses two that claim one task."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from executors.base import Executor, JobRun
from jobexec.core.config import Settings

ENTRY_POINT_GROUP = "jobexec.executors"

logger = logging.getLogger(__name__)


class DuplicateExecutorError(Exception):
    """Two executors claim the same task; neither is registered."""

    def __init__(self, task: str, first: type[Executor], second: type[Executor]) -> None:
        super().__init__(
            f"executors {_qualname(first)} and {_qualname(second)} both claim task {task!r}"
        )
        self.task = task
        self.classes = (first, second)


class ExecutorLoadError(Exception):
    """An entry point of the executor group could not be loaded or did not build an Executor."""

    def __init__(self, entry_point: EntryPoint, problem: str) -> None:
        super().__init__(
            f"executor entry point {entry_point.name!r} = {entry_point.value!r} "
            f"(group {entry_point.group}) {problem}"
        )
        self.entry_point = entry_point


class Registry:
    """The executors a worker can run, by task; built all-or-nothing."""

    def __init__(self, executors: Iterable[Executor]) -> None:
        by_task: dict[str, Executor] = {}
        for executor in executors:
            task = getattr(executor, "task", None)
            if not isinstance(task, str) or not task:
                raise TypeError(f"executor {_qualname(type(executor))} has no task name")
            claimed = by_task.get(task)
            if claimed is not None:
                raise DuplicateExecutorError(task, type(claimed), type(executor))
            by_task[task] = executor
        self._by_task = by_task

    @property
    def tasks(self) -> list[str]:
        """The task names served, sorted."""
        return sorted(self._by_task)

    def find(self, run: JobRun) -> Executor | None:
        """The executor that supports the run, or None when none does."""
        # the executor named by payload.task is the usual answer; others may still opt in
        named = self._by_task.get(run.task) if run.task is not None else None
        if named is not None and named.supports(run):
            return named
        for executor in self._by_task.values():
            if executor is not named and executor.supports(run):
                return executor
        return None

    def close(self) -> None:
        """Close every executor; one failing to close does not keep the others open."""
        _close_all(self._by_task.values())


def load_registry(settings: Settings, group: str = ENTRY_POINT_GROUP) -> Registry:
    """Build the registry from every entry point of `group`, each called with the settings."""
    built: list[Executor] = []
    try:
        for entry_point in entry_points(group=group):
            built.append(_build(entry_point, settings))
        registry = Registry(built)
    except BaseException:
        # nothing is registered on failure, so release what was already built
        _close_all(built)
        raise
    logger.info(
        "executors loaded: %s",
        ", ".join(registry.tasks),
        extra={"action": "executors_loaded", "tasks": registry.tasks},
    )
    return registry


def _build(entry_point: EntryPoint, settings: Settings) -> Executor:
    try:
        factory = entry_point.load()
    except Exception as exc:
        raise ExecutorLoadError(
            entry_point, f"failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(factory):
        raise ExecutorLoadError(entry_point, "is not a class or factory")
    try:
        executor = factory(settings)
    except Exception as exc:
        raise ExecutorLoadError(
            entry_point, f"failed to build: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(executor, Executor):
        raise ExecutorLoadError(
            entry_point, f"built a {type(executor).__name__}, not an executors.Executor"
        )
    return executor


def _close_all(executors: Iterable[Executor]) -> None:
    for executor in executors:
        try:
            executor.close()
        except Exception:
            logger.exception(
                "executor %s failed to close",
                executor.task,
                extra={"action": "executor_close_error", "task": executor.task},
            )


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
