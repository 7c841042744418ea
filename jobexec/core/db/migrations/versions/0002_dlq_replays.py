"""`dlq_replays`: the dead-letter records `jobexec dlq replay` has republished, so none twice.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from jobexec.core.db.schema import dlq_replays

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    bind = op.get_bind()
    if "dlq_replays" not in sa.inspect(bind).get_table_names():
        dlq_replays.create(bind)


def downgrade() -> None:
    op.drop_table("dlq_replays")
