"""`job_runs.task`, the job's payload.task when the try was claimed, and an index on it over
unfinished tries: a capped task's claim counts them. jobexec's own tables only: `jobs` is
never altered.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

_INDEX = "ix_job_runs_unfinished_task"


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # Checked: a database whose 0001 ran before 0001 was frozen got both from schema.py then.
    if "task" not in {c["name"] for c in inspector.get_columns("job_runs")}:
        op.add_column("job_runs", sa.Column("task", sa.String(255)))
    if _INDEX not in {ix["name"] for ix in inspector.get_indexes("job_runs")}:
        unfinished = sa.text("finished_at IS NULL")
        op.create_index(
            _INDEX, "job_runs", ["task"], postgresql_where=unfinished, sqlite_where=unfinished
        )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="job_runs")
    op.drop_column("job_runs", "task")
