"""The sweeper: no dispatched run is left RUNNING forever.

A run whose Celery message was lost, whose worker vanished with its lease, or whose JobEvent
never reached Kafka sits RUNNING with no live lease. After `configs.sweeper.abandoned-after-ms`
the sweeper dispatches it again (attempts + 1) or, with no tries left, settles it as exhausted.
It runs inside `jobexec scheduler`; several instances are safe (the claim skips locked rows).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from jobexec import outcomes
from jobexec.config import Settings
from jobexec.db.store import Dispatch, Job, JobStore
from jobexec.deadletter import DeadLetterError, DeadLetterWriter
from jobexec.events import JobEvent

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


def settle_exhausted(
    store: JobStore,
    job: Job,
    cause: str,
    dead_letters: DeadLetterWriter | None,
    topic: str,
    lost_try: bool = False,
) -> bool:
    """Settle a run that has no tries left and no worker, as section 5's exhaustion, and
    dead-letter it; False when the job moved on meanwhile.

    Shared by the sweeper and the workers' rescuer; `lost_try` also records the current try,
    whose worker died, as EXHAUSTED (and settles nothing if a worker took it over).
    """
    reason = outcomes.exhaustion_reason(job.attempts, cause)
    now = store.db_now()
    values = outcomes.exhausted(job, reason, now)
    settled = (
        store.settle_lost(job, now, values, reason) if lost_try else store.settle(job, now, values)
    )
    if not settled:
        return False
    log.warning(
        "job %s: %s",
        job.job_id,
        reason,
        extra={"action": "job_exhausted", "job_id": job.job_id, "attempt": job.attempts},
    )
    if dead_letters is None:
        return True
    event = JobEvent(job.job_id, job.attempts, job.next_run_at)
    try:
        dead_letters.send(outcomes.exhausted_letter(event, reason, topic))
        dead_letters.flush(10)
    except DeadLetterError as exc:
        log.error(
            "could not dead-letter job %s: %s",
            job.job_id,
            exc,
            extra={"action": "dead_letter_failed", "job_id": job.job_id},
        )
    return True
