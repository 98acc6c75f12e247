"""retention: key records of pruned items, the day each feed's items were last read, first-seen index

Revision ID: 0005_retention
Revises: 0004
"""

from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "0005_retention"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entry_keys",
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("key_hash", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_seen", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_entry_keys_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("feed_id", "key_hash", name=op.f("pk_entry_keys")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_entry_keys_first_seen", "entry_keys", ["first_seen"], unique=False)
    op.create_index("ix_entries_fetched_at", "entries", ["fetched_at"], unique=False)
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.add_column(sa.Column("parsed_day", sa.Integer(), nullable=True))
    # Feeds polled before this revision: their items were last read at their last success at
    # the latest, so key records made later count them as still carried (never too early a drop).
    conn = op.get_bind()
    feeds = sa.table("feeds", sa.column("id", sa.Integer), sa.column("last_success_at", sa.DateTime))
    day = {}
    for fid, at in conn.execute(sa.select(feeds.c.id, feeds.c.last_success_at)):
        if at is not None:
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            day.setdefault(int(at.timestamp() // 86400), []).append(fid)
    target = sa.table("feeds", sa.column("id", sa.Integer), sa.column("parsed_day", sa.Integer))
    for d, ids in day.items():
        for i in range(0, len(ids), 500):
            conn.execute(sa.update(target).where(target.c.id.in_(ids[i : i + 500])).values(parsed_day=d))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch_op:
        batch_op.drop_column("parsed_day")
    op.drop_index("ix_entries_fetched_at", table_name="entries")
    op.drop_index("ix_entry_keys_first_seen", table_name="entry_keys")
    op.drop_table("entry_keys")
