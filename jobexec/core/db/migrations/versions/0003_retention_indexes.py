"""Indexes by finish time on `job_runs` and `dlq_replays`, so retention deletes old rows in
small batches without scanning the history. jobexec's own tables only: `jobs` is never altered.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

_INDEXES = (
    ("ix_job_runs_finished_at", "job_runs", "finished_at"),
    ("ix_dlq_replays_replayed_at", "dlq_replays", "replayed_at"),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for name, table, column in _INDEXES:
        if name not in {ix["name"] for ix in inspector.get_indexes(table)}:
            op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _column in _INDEXES:
        op.drop_index(name, table_name=table)
