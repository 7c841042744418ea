"""Create `jobs` when missing (never alter an existing one) and jobexec's `job_runs`.

The tables are written out as they were at this revision: a later edit of schema.py must not
change what an old revision creates (later revisions add to them).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite's rowid key autoincrements
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "jobs" not in existing:
        op.create_table(
            "jobs",
            sa.Column("job_id", sa.String(255), primary_key=True),
            sa.Column("job_type", sa.String(32), nullable=False),
            sa.Column("execution_mode", sa.String(32)),
            sa.Column("cron_expression", sa.String(255)),
            sa.Column("payload", _JSON, nullable=False),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("failure_reason", sa.String),
            sa.Column("failed_at", _TIME),
            sa.Column("next_run_at", _TIME, nullable=False),
            sa.Column("created_at", _TIME, nullable=False),
            sa.Column("updated_at", _TIME, nullable=False),
            sa.Column("created_by", sa.String(255), nullable=False),
        )
        # The scheduler's claim of due rows.
        op.create_index("ix_jobs_status_next_run_at", "jobs", ["status", "next_run_at"])
    if "job_runs" not in existing:
        op.create_table(
            "job_runs",
            sa.Column("id", _ID, primary_key=True, autoincrement=True),
            sa.Column("job_id", sa.String(255), nullable=False),
            sa.Column("run_at", _TIME, nullable=False),
            sa.Column("attempt", sa.Integer, nullable=False),
            sa.Column("worker", sa.String(255)),
            sa.Column("status", sa.String(32), nullable=False),
            sa.Column("started_at", _TIME, nullable=False),
            sa.Column("lease_expires_at", _TIME, nullable=False),
            sa.Column("finished_at", _TIME),
            sa.Column("error", sa.String),
            sa.UniqueConstraint("job_id", "run_at", "attempt", name="uq_job_runs_try"),
        )
        op.create_index("ix_job_runs_job_id_started", "job_runs", ["job_id", "started_at"])


def downgrade() -> None:
    op.drop_table("job_runs")
