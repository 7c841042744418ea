"""`dlq_replays`: the dead-letter records `jobexec dlq replay` has republished, so none twice.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from jobexec.db.schema import UtcDateTime

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    if "dlq_replays" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "dlq_replays",
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("offset", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("replayed_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("topic", "partition", "offset", name="pk_dlq_replays"),
    )


def downgrade() -> None:
    op.drop_table("dlq_replays")
