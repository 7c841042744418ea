"""`dlq_replays`: the dead-letter records `jobexec dlq replay` has republished, so none twice.

The table is written out as it was at this revision, not read from schema.py.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    if "dlq_replays" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "dlq_replays",
            sa.Column("topic", sa.String(255), nullable=False),
            sa.Column("partition", sa.Integer, nullable=False),
            sa.Column(
                "offset", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
            ),
            sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("topic", "partition", "offset", name="pk_dlq_replays"),
        )


def downgrade() -> None:
    op.drop_table("dlq_replays")
