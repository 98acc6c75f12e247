"""The schema as SQLAlchemy Core tables. Uniqueness lives here, in the database, not in Python.

The ORM classes of :mod:`watcher.store.models` are mapped onto these tables. Code on the service's
start-up path (syncing and claiming feeds, digest schedules) uses the tables directly, so
`watcher run` reaches its first fetch without importing the ORM.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which stores naive text) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass UTC-aware values")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def _required(name: str, *args: Any, **kw: Any) -> Column[Any]:
    """A NOT NULL column (what the models' non-optional ``Mapped[...]`` types said)."""
    return Column(name, *args, nullable=False, **kw)


feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("url", String(2048), unique=True),
    Column("name", String(300)),
    Column("title", String(500)),
    _required("origin", String(16), default="config"),  # config | cli
    Column("interval_s", Float),
    _required("status", String(16), default="ok"),  # ok | error | backoff | gone | removed
    Column("etag", String(500)),
    Column("last_modified", String(100)),
    Column("body_sha256", String(64)),
    Column("ttl_minutes", Integer),
    Column("poll_interval_s", Float),  # the adaptive interval in force
    # UTC day number of the last poll that read the feed's items: key records last seen before
    # that day are no longer in the feed (a 304 carries the same items, so it does not count).
    Column("parsed_day", Integer),
    Column("last_polled_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_error", Text),
    _required("error_count", Integer, default=0),
    _required("next_poll_at", UTCDateTime, index=True),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
    _required("created_at", UTCDateTime),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE")),
    _required("entry_key", String(1024)),
    _required("title", Text),
    _required("summary", Text),
    Column("link", String(2048)),
    Column("source", String(500)),
    Column("author", String(500)),
    _required("published", UTCDateTime),
    _required("fetched_at", UTCDateTime),
    UniqueConstraint("feed_id", "entry_key", name="uq_entries_feed_key"),
    Index("ix_entries_link", "link"),
    Index("ix_entries_fetched_at", "fetched_at"),  # retention walks items by first-seen time
)

# What stays of an item pruned by retention: see models.EntryKey.
entry_keys = Table(
    "entry_keys",
    metadata,
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), primary_key=True),
    Column("key_hash", BigInteger, primary_key=True, autoincrement=False),
    _required("first_seen", Integer),  # the day the item was first stored
    _required("last_seen", Integer),  # the last day its feed was seen carrying it
    Index("ix_entry_keys_first_seen", "first_seen"),
    sqlite_with_rowid=False,
)

matches = Table(
    "matches",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("entry_id", Integer, ForeignKey("entries.id", ondelete="CASCADE")),
    _required("profile", String(100), index=True),
    _required("score", Float),
    _required("terms", JSON),  # [[term, contribution], ...]
    _required("created_at", UTCDateTime, index=True),
    # Set when the profile in force no longer matches this queued match (an exclude, a higher
    # threshold…): it is kept, with the reason, but no digest carries it.
    Column("withheld_at", UTCDateTime),
    Column("withheld_reason", Text),
    UniqueConstraint("entry_id", "profile", name="uq_matches_entry_profile"),
)

digest_runs = Table(
    "digest_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("digest", String(64), index=True),
    _required("key", String(100), unique=True),  # idempotency key
    _required("status", String(16), default="pending"),  # pending | sent | failed
    _required("attempts", Integer, default=0),
    _required("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    _required("created_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
)

digest_schedules = Table(
    "digest_schedules",
    metadata,
    Column("digest", String(64), primary_key=True),
    _required("schedule", String(200)),
    _required("timezone", String(64)),
    _required("fired_at", UTCDateTime),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("digest", String(64)),
    _required("match_id", Integer, ForeignKey("matches.id", ondelete="CASCADE")),
    _required("run_id", Integer, ForeignKey("digest_runs.id", ondelete="CASCADE"), index=True),
    UniqueConstraint("digest", "match_id", name="uq_deliveries_digest_match"),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("match_id", Integer, ForeignKey("matches.id", ondelete="CASCADE"), unique=True),
    _required("verdict", String(16)),  # relevant | not_relevant
    Column("note", Text),
    _required("at", UTCDateTime, index=True),
    _required("via", String(16)),  # web | cli | …
)

suggestions = Table(
    "suggestions",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("profile", String(100), index=True),
    _required("base", String(64)),  # fingerprint of the profile the proposal was measured on
    _required("changes", JSON),  # [{key, kind, value, weight, effect…}]
    _required("created_at", UTCDateTime),
    Column("applied_at", UTCDateTime),
)
