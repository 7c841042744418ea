"""Executors: the strategy that runs a job's `payload.task`, and the registry that picks one."""

from executors.base import (
    Executor,
    ExecutorError,
    JobRun,
    PermanentError,
    Stopped,
    TransientError,
)
from executors.registry import (
    DuplicateExecutorError,
    ExecutorLoadError,
    Registry,
    load_registry,
)

__all__ = [
    "DuplicateExecutorError",
    "Executor",
    "ExecutorError",
    "ExecutorLoadError",
    "JobRun",
    "PermanentError",
    "Registry",
    "Stopped",
    "TransientError",
    "load_registry",
]
