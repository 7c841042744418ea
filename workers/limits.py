"""Time limits of a try (README: Run control): the global, per-task and per-job limits.

`payload.max_run_seconds` overrides `configs.executors.<task>.max-run-seconds`, which overrides
`configs.executors.max-run-seconds`. Settings are checked once at worker start (exit 2); a bad
payload value fails its job permanently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from executors import PermanentError
from jobexec.core.config import ConfigError, Settings, positive_seconds, relaxed_env_name
from jobexec.core.sections import ExecutorsSection

GLOBAL_KEY = "configs.executors.max-run-seconds"
PAYLOAD_FIELD = "max_run_seconds"
T = TypeVar("T")


def task_key(task: str) -> str:
    """The per-task limit's key, e.g. `configs.executors.http.max-run-seconds`."""
    return f"configs.executors.{task}.max-run-seconds"


def shown(seconds: float) -> str:
    """A limit as people write it: `30`, `0.5`."""
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def limit_reason(seconds: float) -> str:
    """The reason a try past its limit is recorded with."""
    return f"run exceeded its time limit of {shown(seconds)} s"


@dataclass(frozen=True)
class TimeLimits:
    """The limits a worker applies: the global one and those set per task."""

    default: float = 3600.0
    per_task: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, tasks: Iterable[str]) -> TimeLimits:
        """Read the limits for these tasks; ConfigError naming the key when one is bad."""
        per_task = per_task_settings(settings, tasks, task_key, positive_seconds)
        default = ExecutorsSection.from_settings(settings).max_run_seconds
        return cls(default=default, per_task=per_task)

    def for_run(self, task: str, payload: Mapping[str, Any]) -> float:
        """The limit of one try of this job; PermanentError when its payload's is bad."""
        if PAYLOAD_FIELD in payload:
            return payload_limit(payload[PAYLOAD_FIELD])
        return self.per_task.get(task, self.default)


def payload_limit(value: Any) -> float:
    """`payload.max_run_seconds`, validated: a positive, finite number."""
    problem = f"payload.{PAYLOAD_FIELD} must be a positive number of seconds, got {value!r}"[:200]
    # bool is an int subclass, but `true` seconds is a payload mistake
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PermanentError(problem)
    try:
        seconds = float(value)
    except OverflowError:
        raise PermanentError(problem) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise PermanentError(problem)
    return seconds


def per_task_settings(
    settings: Settings,
    tasks: Iterable[str],
    key_of: Callable[[str], str],
    parse: Callable[[str], T],
) -> dict[str, T]:
    """The per-task values set for these tasks (unset ones absent), each parsed; ConfigError
    naming the key and where it came from when `parse` raises ValueError."""
    values: dict[str, T] = {}
    for task in tasks:
        key = key_of(task)
        raw = settings.lookup(key)
        if raw is None:
            continue
        try:
            values[task] = parse(raw)
        except ValueError as exc:
            problem = f"is invalid: {raw!r} ({exc})"
            raise ConfigError(key, problem, config_source(settings, key)) from None
    return values


def config_source(settings: Settings, key: str) -> str:
    """Where a key's value came from: its file, or its environment variable."""
    source = settings.source(key)
    # `source` knows the files' keys; a value found by lookup elsewhere is the environment's
    if source.startswith(("not set in", "no configuration file")):
        return f"environment variable {relaxed_env_name(key)}"
    return source
