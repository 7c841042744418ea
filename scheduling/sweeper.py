"""The sweeper: no dispatched run is left RUNNING forever.

A run whose Celery message was lost, whose worker vanished with its lease, or whose JobEvent
never reached Kafka sits RUNNING with no live lease. After `configs.sweeper.abandoned-after-ms`
the sweeper dispatches it again (attempts + 1) or, with no tries left, settles it as exhausted.
It runs inside `jobexec scheduler`; several instances are safe (the claim skips locked rows).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from jobexec.core.config import Settings
from jobexec.core.db.store import Dispatch, Job, JobStore
from jobexec.core.deadletter import DeadLetterWriter
from jobexec.core.exhaustion import settle_exhausted

log = logging.getLogger("jobexec.sweeper")


class Sweeper:
    def __init__(self, settings: Settings, store: JobStore, dead_letters: DeadLetterWriter) -> None:
        self.store = store
        self.dead_letters = dead_letters
        self.topic: str = settings.get("configs.kafka.topic.job-events")
        self.abandoned_after = timedelta(
            milliseconds=settings.get("configs.sweeper.abandoned-after-ms")
        )
        self.max_attempts: int = settings.get("configs.retry.max-attempts")
        self.batch_size: int = settings.get("configs.scheduler.batch-size")

    def sweep(self) -> list[Dispatch]:
        """Re-dispatch or settle abandoned runs; returns the runs to publish again."""
        redispatch, spent = self.store.sweep_abandoned(
            self.abandoned_after, self.max_attempts, self.batch_size
        )
        for d in redispatch:
            log.warning(
                "job %s was abandoned RUNNING; dispatching try %s",
                d.job_id,
                d.attempt,
                extra={"action": "job_redispatched", "job_id": d.job_id, "attempt": d.attempt},
            )
        for job in spent:
            self._settle(job)
        return redispatch

    def _settle(self, job: Job) -> None:
        settle_exhausted(
            self.store, job, "the run was abandoned (no live lease)", self.dead_letters, self.topic
        )
