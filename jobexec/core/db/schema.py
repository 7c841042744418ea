"""Tables: `jobs` as the neighbouring services create it, and jobexec's own `job_runs`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL; on SQLite, naive values are read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("job_id", String(255), primary_key=True),
    Column("job_type", String(32), nullable=False),
    Column("execution_mode", String(32)),
    Column("cron_expression", String(255)),
    Column("payload", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("status", String(32), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("failure_reason", String),
    Column("failed_at", UtcDateTime),
    Column("next_run_at", UtcDateTime, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Index("ix_jobs_status_next_run_at", "status", "next_run_at"),
)

# One row per try of a run: the run history, and the lease that makes a duplicate a no-op.
job_runs = Table(
    "job_runs",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("job_id", String(255), nullable=False),
    # The job's next_run_at when the run was dispatched: with attempt, it names one try.
    Column("run_at", UtcDateTime, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(255)),
    Column("status", String(32), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("lease_expires_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime),
    Column("error", String),
    # The job's payload.task when the try was claimed: concurrency caps count by it (0004).
    Column("task", String(255)),
    UniqueConstraint("job_id", "run_at", "attempt", name="uq_job_runs_try"),
    Index("ix_job_runs_job_id_started", "job_id", "started_at"),
    # Retention finds old finished tries without reading the whole history (migration 0003).
    Index("ix_job_runs_finished_at", "finished_at"),
    # A capped task's claim counts its unfinished tries (migration 0004).
    Index(
        "ix_job_runs_unfinished_task",
        "task",
        postgresql_where=text("finished_at IS NULL"),
        sqlite_where=text("finished_at IS NULL"),
    ),
)

# The dead-letter records `jobexec dlq replay` republished: each is replayed once.
dlq_replays = Table(
    "dlq_replays",
    metadata,
    Column("topic", String(255), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger().with_variant(Integer(), "sqlite"), nullable=False),
    Column("replayed_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("topic", "partition", "offset", name="pk_dlq_replays"),
    Index("ix_dlq_replays_replayed_at", "replayed_at"),  # for retention (migration 0003)
)
