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
from jobexec.core.sections import KafkaSection, RetrySection, SchedulerSection, SweeperSection

log = logging.getLogger("jobexec.sweeper")


class Sweeper:
    def __init__(
        self,
        store: JobStore,
        dead_letters: DeadLetterWriter,
        *,
        topic: str,
        abandoned_after: timedelta,
        max_attempts: int,
        batch_size: int,
    ) -> None:
        self.store = store
        self.dead_letters = dead_letters
        self.topic = topic
        self.abandoned_after = abandoned_after
        self.max_attempts = max_attempts
        self.batch_size = batch_size

    @classmethod
    def from_settings(
        cls, settings: Settings, store: JobStore, dead_letters: DeadLetterWriter
    ) -> Sweeper:
        return cls(
            store,
            dead_letters,
            topic=KafkaSection.from_settings(settings).job_events_topic,
            abandoned_after=SweeperSection.from_settings(settings).abandoned_after,
            max_attempts=RetrySection.from_settings(settings).max_attempts,
            batch_size=SchedulerSection.from_settings(settings).batch_size,
        )

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
