"""Create `jobs` when missing (never alter an existing one) and jobexec's `job_runs`.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

from jobexec.core.db.schema import job_runs, jobs

revision = "0001"
down_revision = None


def upgrade() -> None:
    bind = op.get_bind()
    existing = set(sa.inspect(bind).get_table_names())
    if "jobs" not in existing:
        jobs.create(bind)  # with its (status, next_run_at) index for the scheduler's claim
    if "job_runs" not in existing:
        job_runs.create(bind)


def downgrade() -> None:
    op.drop_table("job_runs")
