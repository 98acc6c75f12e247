"""feeds.poll_interval_s: the adaptive polling interval in force, so a 304 needs no history query

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.add_column(sa.Column("poll_interval_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.drop_column("poll_interval_s")
