"""Settling a run with no tries left and no worker: its row, its log line, its dead letter.

Shared by the sweeper (abandoned runs) and the workers' rescuer (runs whose worker died).
"""

from __future__ import annotations

import logging

from jobexec.core import metrics, outcomes
from jobexec.core.db.store import Job, JobStore
from jobexec.core.deadletter import DeadLetterError, DeadLetterWriter
from jobexec.core.events import JobEvent, Origin

log = logging.getLogger("jobexec.sweeper")


def settle_exhausted(
    store: JobStore,
    job: Job,
    cause: str,
    dead_letters: DeadLetterWriter | None,
    topic: str,
    lost_try: bool = False,
) -> bool:
    """Settle a run that has no tries left and no worker, as an exhausted run, and
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
    # Which record asked for the run is not known here: the events topic, at -1.
    letter = outcomes.exhausted_letter(event, reason, Origin(topic, -1, -1))
    try:
        dead_letters.send(letter)
        dead_letters.flush(10)
        metrics.DEAD_LETTERED.labels("abandoned").inc()
    except DeadLetterError as exc:
        log.error(
            "could not dead-letter job %s: %s",
            job.job_id,
            exc,
            extra={"action": "dead_letter_failed", "job_id": job.job_id},
        )
    return True
