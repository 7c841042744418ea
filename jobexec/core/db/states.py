"""The words of the job and run lifecycles, as stored in the database."""

from enum import StrEnum


class JobStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    PAUSED = "PAUSED"
    RUNNING = "RUNNING"
    DISPATCHED = "DISPATCHED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class JobType(StrEnum):
    ONE_TIME = "ONE_TIME"
    RECURRING = "RECURRING"


class RunStatus(StrEnum):
    """Outcome of one try, kept in job_runs."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    RETRYING = "RETRYING"
    EXHAUSTED = "EXHAUSTED"
    # The try's worker died: its lease expired unfinished and a rescuer recorded it.
    LOST = "LOST"
    CANCELLED = "CANCELLED"  # its job was cancelled while the try ran
    # Unfinished: its worker stopped and handed it back; the next delivery takes it over at
    # once, the rescuer only after its lease (a lost message).
    HANDED_BACK = "HANDED_BACK"
