"""digest_schedules: when each cron digest last fired, shared by every worker

Revision ID: 0006_digest_schedules
Revises: 0005_retention
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_digest_schedules"
down_revision = "0005_retention"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_schedules",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("schedule", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_digest_schedules")),
    )
    # Digests that already ran carry on from their last run: a digest that was due before the
    # upgrade is still due after it, and one that had just gone out does not go out again.
    conn = op.get_bind()
    runs = sa.table("digest_runs", sa.column("digest", sa.String), sa.column("created_at", sa.DateTime))
    newest = sa.func.max(runs.c.created_at, type_=sa.DateTime(timezone=True))
    last = conn.execute(sa.select(runs.c.digest, newest).group_by(runs.c.digest)).all()
    if last:
        schedules = sa.table(
            "digest_schedules",
            sa.column("digest", sa.String),
            sa.column("schedule", sa.String),
            sa.column("timezone", sa.String),
            sa.column("fired_at", sa.DateTime(timezone=True)),
        )
        conn.execute(
            schedules.insert(),
            [{"digest": d, "schedule": "", "timezone": "", "fired_at": at} for d, at in last],
        )


def downgrade() -> None:
    op.drop_table("digest_schedules")
