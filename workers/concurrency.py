"""Concurrency caps: how many tries of one task run at once across all workers,
`configs.executors.<task>.concurrency` [unlimited].

The cap is enforced at the claim in the job database (`JobStore.claim`); a try over it is
deferred at the same attempt. Settings are checked once at worker start (exit 2).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from jobexec.core.config import Settings
from workers.limits import per_task_settings

# A deferred try looks again after this many seconds, jittered so deferred tries spread out.
DEFER_MIN_S = 1.0
DEFER_MAX_S = 3.0


def cap_key(task: str) -> str:
    """The per-task cap's key, e.g. `configs.executors.http.concurrency`."""
    return f"configs.executors.{task}.concurrency"


def caps_from_settings(settings: Settings, tasks: Iterable[str]) -> Mapping[str, int]:
    """The caps set for these tasks (uncapped ones absent); ConfigError naming the key when
    one is not a positive whole number."""
    return per_task_settings(settings, tasks, cap_key, _positive_tries)


def _positive_tries(raw: str) -> int:
    try:
        cap = int(raw.strip())
    except ValueError:
        cap = 0
    if cap <= 0:
        raise ValueError("expected a positive whole number of tries")
    return cap


def defer_delay() -> float:
    """How long a try over its task's cap waits before it is delivered again."""
    return random.uniform(DEFER_MIN_S, DEFER_MAX_S)
