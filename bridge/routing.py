"""Which queue each run of a poll goes to: by its `jobexec-task` header, else one job-table read.

Without routes nothing is looked up: every run goes to the default queue. Without the job
database (`configs.jobDb.url` unset for the bridge), events without the header go there too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from confluent_kafka import Message
from sqlalchemy.exc import SQLAlchemyError

from jobexec.core.routes import TASK_HEADER, Routes

log = logging.getLogger("jobexec.bridge")

TaskLookup = Callable[[Sequence[str]], Mapping[str, str | None]]


class TaskLookupError(Exception):
    """The job database could not name the tasks of a poll's runs: the hand-over waits."""


def task_header(message: Message) -> str | None:
    """The `jobexec-task` header of a record, or None (absent, or not UTF-8 text)."""
    raw = message.headers() or []
    for name, value in raw.items() if isinstance(raw, dict) else raw:
        if name == TASK_HEADER and value is not None:
            try:
                return value.decode() if isinstance(value, bytes) else str(value)
            except UnicodeDecodeError:
                return None
    return None


class Router:
    """Routes runs to queues; looks up, in one statement per poll, the tasks headers lack."""

    def __init__(self, routes: Routes, lookup: TaskLookup | None) -> None:
        self.routes = routes
        self._lookup = lookup if routes.by_task else None  # no routes: nothing to look up

    @property
    def queues(self) -> tuple[str, ...]:
        return self.routes.queues

    def queues_for(self, runs: Sequence[tuple[str, str | None]]) -> list[str]:
        """The queue of each (job_id, task from the header) pair, in order."""
        if not self.routes.by_task:
            return [self.routes.default] * len(runs)
        missing = [job_id for job_id, task in runs if task is None]
        looked_up: Mapping[str, str | None] = {}
        if missing and self._lookup is not None:
            try:
                looked_up = self._lookup(missing)
            except SQLAlchemyError as exc:
                raise TaskLookupError(f"job database: {type(exc).__name__}") from exc
        return [
            self.routes.queue_for(task if task is not None else looked_up.get(job_id))
            for job_id, task in runs
        ]
