"""`--pool gevent`: Celery's gevent pool, with the hand-back of running tries at shutdown."""

from __future__ import annotations

from typing import Any

from celery.concurrency import gevent

from workers import stop_deadline
from workers.pools import hand_back_running_tries


class GeventPool(gevent.TaskPool):  # type: ignore[misc]
    """Kills no greenlet at shutdown: a killed try's message would be acknowledged and lost."""

    def terminate_job(self, pid: Any, signal: Any = None) -> None:
        hand_back_running_tries(stop_deadline.armed())
