"""Concurrency caps (contract section 10): how many tries of one task run at once across all
workers, `configs.executors.<task>.concurrency` [unlimited].

The cap is enforced at the claim in the job database (`JobStore.claim`); a try over it is
deferred at the same attempt. Settings are checked once at worker start (exit 2).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping

from jobexec.config import ConfigError, Settings
from workers.limits import config_source

# A deferred try looks again after this many seconds, jittered so deferred tries spread out.
DEFER_MIN_S = 1.0
DEFER_MAX_S = 3.0


def cap_key(task: str) -> str:
    """The per-task cap's key, e.g. `configs.executors.http.concurrency`."""
    return f"configs.executors.{task}.concurrency"


def caps_from_settings(settings: Settings, tasks: Iterable[str]) -> Mapping[str, int]:
    """The caps set for these tasks (uncapped ones absent); ConfigError naming the key when
    one is not a positive whole number."""
    caps: dict[str, int] = {}
    for task in tasks:
        key = cap_key(task)
        raw = settings.lookup(key)
        if raw is None:
            continue
        try:
            cap = int(raw.strip())
        except ValueError:
            cap = 0
        if cap <= 0:
            problem = f"is invalid: {raw!r} (expected a positive whole number of tries)"
            raise ConfigError(key, problem, config_source(settings, key)) from None
        caps[task] = cap
    return caps


def defer_delay() -> float:
    """How long a try over its task's cap waits before it is delivered again."""
    return random.uniform(DEFER_MIN_S, DEFER_MAX_S)
